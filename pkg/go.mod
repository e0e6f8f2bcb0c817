module github.com/nokv/nokv/pkg

go 1.26.0

require github.com/caarlos0/env/v11 v11.4.2

require (
	github.com/google/btree v1.1.3
	github.com/nokv/nokv/api v0.0.0
	go.uber.org/goleak v1.3.0
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b // indirect
)

replace github.com/nokv/nokv/api => ../api
