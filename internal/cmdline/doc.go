// Package cmdline describes collectord's and logctl's command lines once
// and derives everything else from that description: parsing (GNU style,
// through spf13/pflag), the --help text, the man pages and logctl's shell
// completions.
//
// A Command is a name, a synopsis, a summary and a *pflag.FlagSet. Flags
// parse as GNU getopt_long does: bundled short flags (-fn 20),
// --flag=value and --flag value, flags before and after arguments, and
// "--" to end them. Parse also accepts the single-dash long spellings of
// Go's flag package (-addr, -config=FILE) that scripts written for earlier
// versions use: an argument "-name" or "-name=value" whose name is a long
// flag of the set, and is not itself a short flag, is read as "--name".
// Help shows only the double-dash spellings.
//
// Man pages (Page.WriteMan) are roff for man(7), stable byte for byte for
// a given description, so that a test can compare the committed page with
// a fresh rendering. Completion scripts (WriteCompletion) are static: they
// list the subcommands, their flags and the fixed values a flag accepts
// (Values), and complete files for the flags marked with Files; nothing
// runs the program while completing.
//
// The package holds no state: every function works on what it is given.
package cmdline
