package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

func staticFS() fs.FS {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"cluster", "topics", "topic", "messages", "groups", "group", "reset", "produce"}

type pageSet struct {
	byName map[string]*template.Template
}

var templateFuncs = template.FuncMap{
	"bytes":     formatBytes,
	"rate":      formatRate,
	"timeMs":    formatTimeMs,
	"join":      joinInt32s,
	"query":     func(v url.Values) template.URL { return template.URL(v.Encode()) },
	"add":       func(a, b int) int { return a + b },
	"ptrString": func(s *string) string { return derefString(s) },
	// path escapes a group or topic name for a URL path segment: group
	// names may hold "/", "?", "#" or spaces.
	"path": url.PathEscape,
}

func parsePages() (*pageSet, error) {
	ps := &pageSet{byName: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(templateFuncs).
			ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		ps.byName[name] = t
	}
	return ps, nil
}

// page is what every template receives: the layout's fields plus the
// page's own Data.
type page struct {
	Title string
	Nav   string // which top-level link is current
	CSRF  string
	// Error is shown in a red box at the top: the broker's answer when a
	// request behind the page failed, or a validation error.
	Error string
	// Notice is shown in a green box: the outcome of a POST.
	Notice string
	Data   any
}

// render executes a page into a buffer first, so a template error becomes
// a 500 instead of half a page.
func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	p.CSRF = c.csrfToken
	var buf bytes.Buffer
	if err := c.pages.byName[name].Execute(&buf, p); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "console: render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// statusFor is the HTTP status of a page whose Kafka requests failed: the
// console is a gateway to the brokers.
func statusFor(err error) int {
	if err != nil {
		return http.StatusBadGateway
	}
	return http.StatusOK
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// sameHost reports whether an Origin header value names host (host[:port]).
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host == host
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < 0 {
		return "?"
	}
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func formatRate(r float64) string {
	if r < 0 {
		return "–"
	}
	if r < 10 {
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strconv.FormatFloat(r, 'f', 0, 64)
}

func formatTimeMs(ms int64) string {
	if ms < 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05.000Z")
}

func joinInt32s(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(int(id))
	}
	return strings.Join(parts, ",")
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// maxChoices caps the options of a select or datalist (topic names,
// partition numbers); past it the page offers a plain input instead, so a
// cluster of 10,000 topics or partitions does not put them all in a page.
const maxChoices = 256

// capChoices returns names if they fit maxChoices, else nil.
func capChoices[T any](names []T) []T {
	if len(names) > maxChoices {
		return nil
	}
	return names
}

// pager cuts a list of n rows into pages of size rows: tables never render
// more than one page, so a 10,000-partition topic stays one quick page.
type pager struct {
	Page, Pages, Size, Total int
	First, Last              int // row range [First, Last) of this page
	// Prev and Next are the query strings of the neighbouring pages, empty
	// when there is none.
	Prev, Next template.URL
}

func newPager(r *http.Request, total, size int) pager {
	p := pager{Size: size, Total: total, Pages: max(1, (total+size-1)/size)}
	p.Page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	p.Page = min(max(p.Page, 1), p.Pages)
	p.First = (p.Page - 1) * size
	p.Last = min(p.First+size, total)
	link := func(n int) template.URL {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		return template.URL("?" + q.Encode())
	}
	if p.Page > 1 {
		p.Prev = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.Next = link(p.Page + 1)
	}
	return p
}
