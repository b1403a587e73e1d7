// Package collectord is the root of the collectord module: a per-host log
// collector (cmd/collectord) and its CLI (cmd/logctl). It holds no code;
// its test checks the module's layout rules:
//
//   - every package says what it is in a package comment, and every
//     library package (pkg/..., internal/..., not commands) has it in
//     doc.go;
//   - nothing under pkg/ imports a package under internal/, so that every
//     public package can be used from outside the module;
//   - no non-test Go file under cmd/, pkg/ or internal/ is over 600
//     lines: a file that long holds more than one story.
//
// README.md describes the packages; docs/ the protocol and the security
// model.
package collectord
