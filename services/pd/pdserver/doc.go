// Package pdserver holds the NoKV placement driver (PD) service. For now it
// only defines the service's settings: [Config], its defaults, flags and
// validation, and [Resolve], which layers them with the precedence
//
//	flag > NOKV_PD_* environment > cluster file > default
package pdserver
