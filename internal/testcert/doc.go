// Package testcert makes real X.509 certificates for tests: a CA, server
// certificates for the loopback addresses (localhost, 127.0.0.1, ::1),
// client certificates, and expired ones of either, written as PEM files
// that internal/access and the programs' flags read like any others.
//
// It is for tests only, although it is not a _test package (so that tests
// of several packages can share it): the keys are ECDSA P-256 keys made on
// the spot, the files live in t.TempDir() and vanish with the test, and
// failures end the test with t.Fatal. Every function is safe to call from
// parallel tests.
package testcert
