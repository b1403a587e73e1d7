package cmdline

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// Page is a man page: a program and its subcommands, plus sections of
// prose.
type Page struct {
	Name    string // the program: "logctl"
	Section int    // 1 for user commands, 8 for daemons
	Title   string // the NAME line's description
	// Manual is the header's centre: "collectord manual".
	Manual string
	// Main is the program's own command line; for a program whose work is
	// done by subcommands, its Flags may be nil.
	Main Command
	// Commands are the subcommands, each with its flags.
	Commands []Command
	// Sections follow the flags: FILES, EXIT STATUS, SEE ALSO...
	Sections []Section
}

// Section is a titled part of a man page: paragraphs separated by blank
// lines; a paragraph whose lines start with a tab is shown as is.
type Section struct {
	Title string
	Body  string
}

// WriteMan writes the page as roff for man(7). The output depends only on
// p: no date or version is written, so that a committed page stays equal
// to a fresh rendering until the description changes.
func (p *Page) WriteMan(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".\\\" Generated from the program's flag definitions (internal/cmdline); do not edit.\n")
	fmt.Fprintf(&b, ".TH %s %d \"\" \"collectord\" \"%s\"\n", strings.ToUpper(p.Name), p.Section, roffEscape(p.Manual))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", p.Name, roffEscape(p.Title))
	b.WriteString(".SH SYNOPSIS\n")
	if len(p.Commands) == 0 {
		fmt.Fprintf(&b, ".B %s\n%s\n", p.Name, roffEscape(p.Main.Synopsis))
	}
	for i, c := range p.Commands {
		if i > 0 {
			b.WriteString(".br\n")
		}
		fmt.Fprintf(&b, ".B %s %s\n%s\n", p.Name, c.Name, roffEscape(c.Synopsis))
	}
	b.WriteString(".SH DESCRIPTION\n")
	writeParagraphs(&b, p.Main.Description)
	if p.Main.Flags != nil {
		b.WriteString(".SH OPTIONS\n")
		writeFlags(&b, p.Main.Flags)
	}
	if len(p.Commands) > 0 {
		b.WriteString(".SH COMMANDS\n")
		for _, c := range p.Commands {
			fmt.Fprintf(&b, ".SS %s %s\n", p.Name, c.Name)
			writeParagraphs(&b, c.Summary+"\n\n"+c.Description)
			writeFlags(&b, c.Flags)
		}
	}
	for _, s := range p.Sections {
		fmt.Fprintf(&b, ".SH %s\n", strings.ToUpper(s.Title))
		writeParagraphs(&b, s.Body)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFlags writes one tagged paragraph per flag: its names, its
// argument, then its usage and default.
func writeFlags(b *strings.Builder, fs *pflag.FlagSet) {
	visible(fs, func(fl *pflag.Flag) {
		arg, usage := pflag.UnquoteUsage(fl)
		b.WriteString(".TP\n")
		if fl.Shorthand != "" {
			fmt.Fprintf(b, "\\fB\\-%s\\fR, ", fl.Shorthand)
		}
		fmt.Fprintf(b, "\\fB\\-\\-%s\\fR", roffEscape(fl.Name))
		if takesValue(fl) && arg != "" {
			fmt.Fprintf(b, " \\fI%s\\fR", roffEscape(arg))
		}
		b.WriteString("\n")
		b.WriteString(roffLine(usage))
		if def := fl.DefValue; takesValue(fl) && def != "" && def != "[]" && def != "0" && def != "0s" {
			fmt.Fprintf(b, " (default: %s)", roffEscape(def))
		}
		b.WriteString("\n")
	})
}

// writeParagraphs writes text's paragraphs; tab-indented lines are
// literal.
func writeParagraphs(b *strings.Builder, text string) {
	for i, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		para = strings.Trim(para, "\n")
		if para == "" {
			continue
		}
		if i > 0 {
			b.WriteString(".PP\n")
		}
		if strings.HasPrefix(para, "\t") {
			b.WriteString(".nf\n.RS 4\n")
			for _, l := range strings.Split(para, "\n") {
				b.WriteString(roffLine(strings.TrimPrefix(l, "\t")) + "\n")
			}
			b.WriteString(".RE\n.fi\n")
			continue
		}
		b.WriteString(roffLine(strings.Join(strings.Fields(para), " ")) + "\n")
	}
}

// roffLine escapes s as a text line: a leading dot or quote would be read
// as a request.
func roffLine(s string) string {
	s = roffEscape(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = "\\&" + s
	}
	return s
}

// roffEscape escapes backslashes and minus signs (which man(7) would
// otherwise render as hyphens, and which must stay typeable).
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}
