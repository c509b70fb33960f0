package console

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// chromiumNames are the executables tried, Debian's first.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// findChromium returns the browser to drive. Without one the test skips
// on a developer's machine, but fails in CI (CI=true), where
// scripts/install-chromium.sh must have installed it.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range chromiumNames {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	msg := "no Chromium found (tried " + strings.Join(chromiumNames, ", ") + "); install it with scripts/install-chromium.sh (Debian: apt-get install chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// screenshotDir is where each page's screenshot goes: SLUICE_SCREENSHOT_DIR
// if set (kept for a reviewer), else a temporary directory.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("SLUICE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browser starts headless Chromium with a fresh profile and the flags that
// keep it off the network except for the pages it is sent to.
func browser(t *testing.T, execPath string) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser under ctx, which must not carry a
	// deadline (the deadline would stop the browser); steps get theirs.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", execPath, err)
	}
	return ctx
}

// ui is one browser tab on the console.
type ui struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

// do runs steps with a bound, failing the test with what was being done.
func (u *ui) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		u.t.Fatalf("%s: %v (page: %s)", what, err, u.describe())
	}
}

// describe is the current location and the start of the page's text, for
// a failure message; a screenshot named failed.png is saved too.
func (u *ui) describe() string {
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ""`))
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(u.shots, "failed.png"), png, 0o644)
	}
	return loc + "\n" + body
}

func (u *ui) text(sel string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		u.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// open navigates to path, waits for sel, checks that the page has no error
// box, and saves a screenshot named name.png.
func (u *ui) open(path, sel, name string) {
	u.t.Helper()
	u.do("open "+path, chromedp.Navigate(u.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
	u.noError(path)
	u.screenshot(name)
}

func (u *ui) noError(where string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#error").length`))
	if err != nil {
		u.t.Fatal(err)
	}
	if n != 0 {
		u.t.Fatalf("%s shows an error: %s", where, u.text("#error"))
	}
}

func (u *ui) screenshot(name string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		u.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(u.shots, name+".png"), png, 0o644); err != nil {
		u.t.Fatal(err)
	}
}

// TestConsoleInBrowser drives the console in headless Chromium against a
// real `sluice serve`: every page renders, the message browser finds a
// record by key, an offset reset through the UI moves the committed
// offset, and a record produced from the browser lands.
func TestConsoleInBrowser(t *testing.T) {
	chromium := findChromium(t)
	node := serve(t, buildSluice(t, t.TempDir()))
	addr := node.kafka
	// Records go to the partition they name: the checks below count on it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	seed(t, cl, adm)

	// The console `sluice serve` itself mounts on its HTTP listener.
	u := &ui{t: t, ctx: browser(t, chromium), base: node.console, shots: screenshotDir(t)}
	u.open("/", "#brokers", "cluster")
	if got := u.text("#brokers"); !strings.Contains(got, addr) {
		t.Fatalf("the cluster page lists brokers %q, want %s", got, addr)
	}
	// The throughput chart fills in from the JSON endpoint, without reload.
	u.do("throughput chart", chromedp.WaitVisible(chromedp.CSS(`figure.chart[data-points] svg polyline`)))
	u.screenshot("cluster-chart")
	u.open("/topics", `a[href="/topics/shop"]`, "topics")
	u.open("/topics/shop", "#partitions", "topic")
	u.open("/groups", `a[href="/groups/billing"]`, "groups")
	u.open("/groups/billing", "#lag", "group")

	browseByKey(t, u)
	resetThroughUI(t, u, adm)
	produceThroughUI(t, u, addr)
}

// seed creates topic shop (2 partitions, 60 keyed records) and an Empty
// group billing with commits at 30 on each partition.
func seed(t *testing.T, cl *kgo.Client, adm *kadm.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "shop"); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 120 {
		recs = append(recs, &kgo.Record{Topic: "shop", Partition: int32(i % 2), Key: []byte(fmt.Sprintf("order-%03d", i)),
			Value: []byte(fmt.Sprintf(`{"order":%d,"item":"widget-%d"}`, i, i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	commit := kadm.Offsets{}
	commit.AddOffset("shop", 0, 30, -1)
	commit.AddOffset("shop", 1, 30, -1)
	if err := adm.CommitAllOffsets(ctx, "billing", commit); err != nil {
		t.Fatal(err)
	}
}

// browseByKey opens the topic, follows "Browse messages" and searches
// partition 1 for one key.
func browseByKey(t *testing.T, u *ui) {
	u.do("search by key",
		chromedp.Navigate(u.base+"/topics/shop"),
		chromedp.Click(chromedp.CSS("#browse")),
		chromedp.WaitVisible(chromedp.CSS("#browse-form")),
		chromedp.SetValue(chromedp.CSS(`#browse-form select[name="partition"]`), "1"),
		chromedp.SetValue(chromedp.CSS("#search-key"), "order-077"),
		chromedp.Click(chromedp.CSS("#browse-submit")),
		chromedp.WaitVisible(chromedp.CSS("#records tr.record")),
	)
	u.noError("the message browser")
	u.screenshot("messages")
	if got := u.text("#records tbody"); !strings.Contains(got, "order-077") || !strings.Contains(got, `"item": "widget-77"`) {
		t.Fatalf("search for key order-077 shows %q", got)
	}
}

// resetThroughUI resets group billing to earliest through the preview and
// confirmation pages and checks the commit with kadm.
func resetThroughUI(t *testing.T, u *ui, adm *kadm.Client) {
	u.do("reset preview",
		chromedp.Navigate(u.base+"/groups/billing"),
		chromedp.WaitVisible(chromedp.CSS("#reset-form")),
		chromedp.SetValue(chromedp.CSS(`#reset-form select[name="mode"]`), "earliest"),
		chromedp.Click(chromedp.CSS("#reset-preview")),
		chromedp.WaitVisible(chromedp.CSS("#reset-confirm")),
	)
	u.noError("the reset preview")
	u.screenshot("reset-preview")
	u.do("reset confirm", chromedp.Click(chromedp.CSS("#reset-submit")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	u.noError("the group page after a reset")
	u.screenshot("reset-done")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offsets, err := adm.FetchOffsets(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int32{0, 1} {
		if o, ok := offsets.Lookup("shop", p); !ok || o.At != 0 {
			t.Errorf("shop-%d committed at %d after a reset to earliest through the UI, want 0", p, o.At)
		}
	}
}

// produceThroughUI produces a record with a header to partition 1 from the
// produce page and reads it back with kgo.
func produceThroughUI(t *testing.T, u *ui, addr string) {
	u.do("produce",
		chromedp.Navigate(u.base+"/produce?topic=shop"),
		chromedp.WaitVisible(chromedp.CSS("#produce-form")),
		chromedp.SetValue(chromedp.CSS("#produce-partition"), "1"),
		chromedp.SetValue(chromedp.CSS("#produce-key"), "from-the-browser"),
		chromedp.SetValue(chromedp.CSS("#produce-value"), "hello from chromium"),
		chromedp.SetValue(chromedp.CSS("#produce-headers"), "origin=ui"),
		chromedp.Click(chromedp.CSS("#produce-submit")),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	u.noError("the produce page")
	u.screenshot("produce")
	if got := u.text("#notice"); !strings.Contains(got, "shop-1 at offset 60") {
		t.Fatalf("produce notice %q, want shop-1 at offset 60", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"shop": {1: kgo.NewOffset().At(60)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	fetches := consumer.PollRecords(ctx, 1)
	if err := fetches.Err(); err != nil {
		t.Fatal(err)
	}
	r := fetches.Records()[0]
	if string(r.Key) != "from-the-browser" || string(r.Value) != "hello from chromium" || len(r.Headers) != 1 || r.Headers[0].Key != "origin" {
		t.Fatalf("the record produced from the browser reads back as %+v", r)
	}
}
