// Package recordtest helps tests compare record.Entry values: it builds
// field lists and names every difference between two entries, so that a
// failing test says which field is wrong rather than that two structs
// differ. It is for tests only; nothing in collectord's binaries imports it.
//
// Every function is safe for concurrent use and keeps nothing it is
// given.
package recordtest
