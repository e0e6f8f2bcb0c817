// Package tests holds NoKV's cross-service tests: package cluster starts PD
// and stores in one process for them.
package tests
