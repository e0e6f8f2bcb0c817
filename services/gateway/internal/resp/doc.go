// Package resp holds the RESP wire pieces the gateway adds on top of redcon: a
// reply builder that speaks RESP2 or RESP3 depending on what the client negotiated
// with HELLO, and a guard on the inbound byte stream that enforces the request
// limits redcon does not (bulk length, inline request size).
package resp
