package cmdline

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// Command is one command line: a program, or one subcommand of it.
type Command struct {
	Name     string // the subcommand ("tail"), or the program's name
	Synopsis string // what follows the name in a usage line: "[-f] [-n N]"
	Summary  string // one line: what it does
	// Description is the longer text for --help and the man page: plain
	// paragraphs separated by blank lines.
	Description string
	Flags       *pflag.FlagSet
	// Args are the fixed values its first argument may take, for
	// completion ("bash", "zsh", "fish"); nil when it takes none or any.
	Args []string
}

// Annotation keys set on flags with Values and Files.
const (
	annotValues = "cmdline_values"
	annotFiles  = "cmdline_files"
)

// Values records the fixed values flag name accepts, for completion.
func Values(fs *pflag.FlagSet, name string, values ...string) {
	if err := fs.SetAnnotation(name, annotValues, values); err != nil {
		panic(err) // a programming error: no such flag
	}
}

// Files marks flag name as naming a file, for completion.
func Files(fs *pflag.FlagSet, name string) {
	if err := fs.SetAnnotation(name, annotFiles, []string{"true"}); err != nil {
		panic(err)
	}
}

// NewFlagSet returns an empty flag set for command name that reports
// errors to its caller (nothing is printed) and keeps the order in which
// flags were defined.
func NewFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// Parse parses args with fs after turning the single-dash long spellings
// of Go's flag package into double-dash ones (see the package doc). It
// returns pflag.ErrHelp for -h or --help.
func Parse(fs *pflag.FlagSet, args []string) error {
	return fs.Parse(legacy(fs, args))
}

// legacy rewrites "-name[=value]" to "--name[=value]" where name is a long
// flag of fs with more than one letter; it stops at "--".
func legacy(fs *pflag.FlagSet, args []string) []string {
	var out []string
	for i, a := range args {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if len(name) < 2 || fs.Lookup(name) == nil {
			continue
		}
		if out == nil {
			out = append([]string(nil), args...)
		}
		out[i] = "-" + a
	}
	if out == nil {
		return args
	}
	return out
}

// WriteHelp writes c's usage, summary and flags, one line per flag
// with its short and long names, as --help shows them. prog is the
// program's name, prefixed to a subcommand's.
func (c *Command) WriteHelp(w io.Writer, prog string) {
	name := c.Name
	if prog != "" && prog != c.Name {
		name = prog + " " + c.Name
	}
	fmt.Fprintf(w, "usage: %s %s\n\n%s.\n\n", name, c.Synopsis, upperFirst(c.Summary))
	fmt.Fprintf(w, "flags:\n%s", c.Flags.FlagUsagesWrapped(100))
	fmt.Fprintln(w, "  -h, --help                 show this help")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// visible calls f for each flag shown in help, in definition order.
func visible(fs *pflag.FlagSet, f func(*pflag.Flag)) {
	fs.VisitAll(func(fl *pflag.Flag) {
		if !fl.Hidden && fl.Deprecated == "" {
			f(fl)
		}
	})
}

// takesValue reports whether fl needs an argument.
func takesValue(fl *pflag.Flag) bool { return fl.NoOptDefVal == "" }
