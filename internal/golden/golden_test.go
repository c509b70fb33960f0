package golden

import (
	"strings"
	"testing"
)

const story = `# a story
#
# with a blank comment line
append n=1
----
offsets 0..0

# second
segments
----
line one
line two
`

func TestGoldenParseAndRender(t *testing.T) {
	blocks, err := Parse([]byte(story))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || blocks[0].Command != "append n=1" || blocks[0].Line != 4 ||
		len(blocks[0].Comments) != 3 || blocks[1].Expected != "line one\nline two" {
		t.Fatalf("parsed %+v", blocks)
	}
	outputs := []string{blocks[0].Expected, blocks[1].Expected}
	if got := Render(blocks, outputs); got != story {
		t.Fatalf("render does not round-trip:\n%s", got)
	}
}

func TestGoldenParseRejectsMalformedFiles(t *testing.T) {
	for _, bad := range []string{"----\nout\n", "one\ntwo\n----\nout\n"} {
		if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("Parse(%q) = %v, want an error naming the line", bad, err)
		}
	}
}
