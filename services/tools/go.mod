module github.com/nokv/nokv/services/tools

go 1.26.0

require (
	github.com/nokv/nokv/api v0.0.0
	github.com/nokv/nokv/pkg v0.0.0
	google.golang.org/grpc v1.85.0
)

require (
	github.com/caarlos0/env/v11 v11.4.2 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/nokv/nokv/pkg => ../../pkg

replace github.com/nokv/nokv/api => ../../api
