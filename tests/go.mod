module github.com/nokv/nokv/tests

go 1.26.0

replace github.com/nokv/nokv/pkg => ../pkg

replace github.com/nokv/nokv/api => ../api

replace github.com/nokv/nokv/services/pd => ../services/pd

replace github.com/nokv/nokv/services/store => ../services/store

require (
	github.com/nokv/nokv/api v0.0.0 // indirect
	github.com/nokv/nokv/pkg v0.0.0 // indirect
	github.com/nokv/nokv/services/pd v0.0.0 // indirect
	github.com/nokv/nokv/services/store v0.0.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
