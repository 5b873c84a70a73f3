// Package doccmd reads the commands that the repository's Markdown docs
// show, for the tests that hold the docs true (TestDocsGoTestCommands in
// the root package, the examples' TestDocs tests): the units of a file
// within which a shell's directory carries over, and a command line split
// into simple commands as a shell would. Standard library only; tests are
// its only users.
package doccmd

import (
	"os"
	"path/filepath"
	"strings"
)

// A File is a Markdown file of the docs, read.
type File struct {
	// Name is its path from the repository root (docs/http.md).
	Name string
	// Text is its content.
	Text string
	// Units are its units (see Units).
	Units [][]Line
}

// Read reads the Markdown files whose commands are held true, docs/*.md
// and README.md, from the repository root.
func Read(root string) ([]File, error) {
	names, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	var files []File
	for _, name := range append(names, filepath.Join(root, "README.md")) {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(root, name)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: filepath.ToSlash(rel), Text: string(b), Units: Units(string(b))})
	}
	return files, nil
}

// Line is a command line of the docs: a logical line of a code block
// or an inline code span, and the line of the file where it starts.
type Line struct {
	// N is the line of the file where it starts (from 1).
	N int
	// Text is the command line: a code block's line with its `\`
	// continuations joined, or an inline code span's text.
	Text string
	// Block is true for a line of a fenced code block, false for an
	// inline code span.
	Block bool
}

// Units splits a markdown file into the units within which a shell's
// current directory carries over: each fenced code block (its logical
// lines, `\` continuations joined) and each paragraph, list item or table
// row outside them (their inline code spans, which may wrap over lines;
// in a table row, `\|` is read as |, as Markdown renders it).
func Units(md string) [][]Line {
	var units [][]Line
	lines := strings.Split(md, "\n")
	var para []string
	paraStart := 0
	flush := func() {
		if len(para) > 0 {
			spans := codeSpans(para, paraStart)
			if strings.HasPrefix(para[0], "|") { // a table row: \| is a | in a cell
				for i := range spans {
					spans[i].Text = strings.ReplaceAll(spans[i].Text, `\|`, "|")
				}
			}
			units = append(units, spans)
		}
		para = nil
	}
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if strings.HasPrefix(trimmed, "```") {
			flush()
			var block []Line
			indent := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " "))]
			unindent := func(l string) string { // a fence's indentation is not part of its lines
				for j := 0; j < len(indent) && strings.HasPrefix(l, " "); j++ {
					l = l[1:]
				}
				return l
			}
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
				start, text := i, unindent(lines[i])
				for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
					i++
					text = strings.TrimSuffix(text, `\`) + " " + unindent(lines[i])
				}
				block = append(block, Line{N: start + 1, Text: text, Block: true})
			}
			units = append(units, block)
			continue
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "|") || strings.HasPrefix(trimmed, "- ") ||
			strings.HasPrefix(trimmed, "* ") || strings.HasPrefix(trimmed, "#") || startsNumbered(trimmed) {
			flush()
		}
		if trimmed != "" {
			if len(para) == 0 {
				paraStart = i
			}
			para = append(para, trimmed)
		}
	}
	flush()
	return units
}

// startsNumbered reports whether s starts a numbered list item ("1. ").
func startsNumbered(s string) bool {
	d := strings.TrimLeft(s, "0123456789")
	return len(d) < len(s) && strings.HasPrefix(d, ". ")
}

// codeSpans returns the inline code spans of a paragraph whose first line
// is line first (0-based) of the file.
func codeSpans(para []string, first int) []Line {
	text := strings.Join(para, " ")
	lineAt := func(off int) int { // 1-based line of a byte offset of text
		n := first
		for _, l := range para {
			if off <= len(l) {
				break
			}
			off -= len(l) + 1
			n++
		}
		return n + 1
	}
	var spans []Line
	for i := 0; i < len(text); {
		if text[i] != '`' {
			i++
			continue
		}
		n := 1
		for i+n < len(text) && text[i+n] == '`' {
			n++
		}
		fence := text[i : i+n]
		end := -1
		for j := i + n; j < len(text); {
			k := strings.Index(text[j:], fence)
			if k < 0 {
				break
			}
			k += j
			if k+n < len(text) && text[k+n] == '`' { // a longer run: not the closing one
				j = k + n + 1
				for j < len(text) && text[j] == '`' {
					j++
				}
				continue
			}
			end = k
			break
		}
		if end < 0 {
			i += n
			continue
		}
		spans = append(spans, Line{N: lineAt(i), Text: text[i+n : end]})
		i = end + n
	}
	return spans
}

// A Command is a simple command (its words, unquoted), or a subshell's
// parenthesis.
type Command struct {
	// Op is "(" or ")" for a parenthesis, "" for a simple command.
	Op string
	// Args are the words of a simple command.
	Args []string
	// Pipe is true when the command's output is piped (|) into the next
	// command.
	Pipe bool
}

// Split splits a command line as a shell would, well enough for
// the docs: words with their quotes removed ('...' literal, "..." with
// backslash escapes), simple commands separated by &&, ||, |, ; and
// newlines, parentheses as subshells, redirections and comments dropped.
func Split(s string) []Command {
	var cmds []Command
	var args []string
	var word strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			args = append(args, word.String())
		}
		word.Reset()
		inWord = false
	}
	endCmd := func(pipe bool) {
		endWord()
		if len(args) > 0 {
			cmds = append(cmds, Command{Args: args, Pipe: pipe})
		}
		args = nil
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				j = len(s) - i - 1
			}
			word.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case ch == '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				word.WriteByte(s[i])
			}
		case ch == '\\' && i+1 < len(s):
			i++
			word.WriteByte(s[i])
			inWord = true
		case ch == '#' && !inWord:
			i = len(s)
		case ch == '$' && i+1 < len(s) && s[i+1] == '(': // $(...): kept in the word
			depth := 0
			for ; i < len(s); i++ {
				word.WriteByte(s[i])
				if s[i] == '(' {
					depth++
				} else if s[i] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			inWord = true
		case ch == ' ' || ch == '\t':
			endWord()
		case ch == '&' || ch == '|' || ch == ';' || ch == '\n':
			endCmd(ch == '|' && !(i+1 < len(s) && s[i+1] == '|') && !(i > 0 && s[i-1] == '|'))
		case ch == '(' || ch == ')':
			endCmd(false)
			cmds = append(cmds, Command{Op: string(ch)})
		case ch == '>' || ch == '<':
			if inWord && strings.Trim(word.String(), "0123456789") == "" { // 2>&1
				word.Reset()
				inWord = false
			}
			endWord()
			for i+1 < len(s) && (s[i+1] == '>' || s[i+1] == '&') {
				i++
			}
			for i+1 < len(s) && s[i+1] == ' ' {
				i++
			}
			for i+1 < len(s) && s[i+1] != ' ' && s[i+1] != ';' && s[i+1] != '&' && s[i+1] != '|' {
				i++
			}
		default:
			word.WriteByte(ch)
			inWord = true
		}
	}
	endCmd(false)
	return cmds
}
