// Package bytesize reads and writes byte counts the way collectord's
// configuration and messages write them: a number with an optional binary
// unit ("65536", "64KiB", "64MiB", "1GiB"). A Size is a plain integer;
// its methods are safe for concurrent use.
package bytesize
