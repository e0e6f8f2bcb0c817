// Package tsobench holds only an end-to-end benchmark of timestamps: a real
// gRPC server on loopback answering PD's Tso stream from the tso.Oracle,
// driven through pkg/pdclient's batching TSOClient. It lives here because it
// is the one place that sees both: pkg cannot import PD's internal packages.
//
//	go test -run '^$' -bench . -benchtime 3s ./internal/tsobench/
//
// Figures are recorded in docs/tso-benchmark.md.
package tsobench
