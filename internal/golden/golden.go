// Package golden runs golden-file tests, the way CONTRIBUTING.md asks state
// machines and storage to be tested: a file in testdata/ tells a story as
// blocks of comment lines, one command, a "----" line and the output the
// command must print, blocks separated by a blank line. A test supplies a
// function that runs one command and returns its output; with rewrite the
// files are written back with the current outputs, to be reviewed as a diff.
package golden

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

// maxFileBytes bounds a golden file; stories are small.
const maxFileBytes = 16 << 20

// Block is one command of a golden file with its expected output.
type Block struct {
	Line     int // of the command, for failure messages
	Comments []string
	Command  string
	Expected string
}

// Parse splits a golden file into blocks. Blank lines between comment lines
// of one block are kept; a blank line after the output ends the block.
func Parse(data []byte) ([]Block, error) {
	var blocks []Block
	var cur *Block
	var out []string
	inOutput := false
	flush := func() {
		if cur != nil {
			cur.Expected = strings.Join(out, "\n")
			blocks = append(blocks, *cur)
		}
		cur, inOutput, out = nil, false, nil
	}
	for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if inOutput {
			if line == "" {
				flush()
			} else {
				out = append(out, line)
			}
			continue
		}
		if cur == nil {
			if line == "" {
				continue
			}
			cur = &Block{Line: i + 1}
		}
		switch {
		case strings.HasPrefix(line, "#") || line == "" && cur.Command == "":
			cur.Comments = append(cur.Comments, line)
		case line == "----":
			if cur.Command == "" {
				return nil, fmt.Errorf("line %d: ---- without a command", i+1)
			}
			inOutput = true
		default:
			if cur.Command != "" {
				return nil, fmt.Errorf("line %d: two commands in one block", i+1)
			}
			cur.Command, cur.Line = line, i+1
		}
	}
	flush()
	return blocks, nil
}

// Render writes blocks back in the file format, with outputs[i] as the
// output of block i.
func Render(blocks []Block, outputs []string) string {
	var b strings.Builder
	for i, block := range blocks {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, c := range block.Comments {
			b.WriteString(c + "\n")
		}
		fmt.Fprintf(&b, "%s\n----\n%s\n", block.Command, outputs[i])
	}
	return b.String()
}

// RunFile runs every block of the file at path through run, failing at the
// first output that differs from the file; with rewrite it writes the file
// back with the current outputs instead.
func RunFile(t testing.TB, path string, rewrite bool, run func(command string) string) {
	t.Helper()
	fsys := vfs.OS()
	data, err := vfs.ReadFile(fsys, path, maxFileBytes)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	outputs := make([]string, len(blocks))
	for i, b := range blocks {
		outputs[i] = run(b.Command)
		if !rewrite && outputs[i] != b.Expected {
			t.Fatalf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, b.Line, b.Command, outputs[i], b.Expected)
		}
	}
	if rewrite {
		if err := vfs.WriteFileAtomic(fsys, path, []byte(Render(blocks, outputs))); err != nil {
			t.Fatal(err)
		}
	}
}

// RunDir runs every dir/*.txt as a subtest named after the file. newRun
// builds a fresh runner per file (a new log, a new controller).
func RunDir(t *testing.T, dir string, rewrite bool, newRun func(t *testing.T) func(command string) string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in %s: %v", dir, err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			RunFile(t, path, rewrite, newRun(t))
		})
	}
}
