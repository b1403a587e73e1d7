// Package ingesttest holds datagrams as real clients send them, for the
// tests and benchmarks of the parser and of whatever receives datagrams.
//
// The samples are read-only: copy one before changing it.
package ingesttest
