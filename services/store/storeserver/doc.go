// Package storeserver holds the NoKV store service. For now it only
// defines the service's settings: [Config], its defaults, flags and
// validation, and [Resolve], which layers them with the precedence
//
//	flag > NOKV_STORE_* environment > cluster file > default
package storeserver
