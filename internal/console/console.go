// Package console is Sluice's web console: server-rendered pages for the
// cluster, topics, a message browser, consumer groups with their lag, live
// throughput and producing a test record.
//
// It talks to the cluster only through the Kafka protocol (one franz-go
// client against the bootstrap brokers it is given), so it knows nothing of
// internal/node and shows the same picture from any node of a cluster. Every
// page reads what it shows from the brokers when it is requested; the only
// state kept here is a sampler's bounded history: cluster throughput (one
// ring) and the total lag of each consumer group (one ring per group, a
// bounded number of groups).
//
// Limits: tables are paginated, the message browser caps the records and
// bytes it scans per request, and every request to the brokers runs under
// a deadline. Requests that change state are POSTs that must carry the
// console's CSRF token and, when the browser sends one, a same-host Origin.
package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/clock"
)

// Options configure a Console. Only Brokers is required.
type Options struct {
	// Brokers are the seed addresses (host:port) of Kafka listeners,
	// usually the node's own.
	Brokers []string
	// Logger receives the console's audit lines (config changes, offset
	// resets, produced records) and sampler errors. Nil discards them.
	Logger *slog.Logger
	// Clock drives the sampler and timestamps samples. Nil is the real clock.
	Clock clock.Clock
	// ThroughputInterval is how often high watermarks and log sizes are
	// sampled for the throughput charts (default 5 s).
	ThroughputInterval time.Duration
	// LagInterval is how often every group's lag is sampled (default 10 s).
	LagInterval time.Duration
	// LagHistory is how many lag samples each group keeps (default 360:
	// one hour at 10 s).
	LagHistory int
	// SampleOnFirstVisit delays the sampler until the first request, so a
	// node whose console nobody opens makes no Kafka requests for it (a
	// broker with 10,000 partitions would otherwise list them all every
	// few seconds for nothing). Charts then start at the first visit.
	SampleOnFirstVisit bool
	// RequestTimeout bounds the Kafka requests behind one page (default 10 s).
	RequestTimeout time.Duration
	// ClientOptions are added to the franz-go client's options (tests use
	// them for SASL or shorter timeouts once Sluice has them).
	ClientOptions []kgo.Opt
	// AllowedHosts are the host names (without port) the console answers
	// to besides IP addresses and "localhost". Requests naming any other
	// Host are refused, so a web page cannot reach the console through
	// DNS rebinding (its own name resolving to 127.0.0.1).
	AllowedHosts []string
}

const (
	defaultThroughputInterval = 5 * time.Second
	defaultLagInterval        = 10 * time.Second
	defaultLagHistory         = 360
	defaultRequestTimeout     = 10 * time.Second
	// throughputHistory is how many throughput samples the charts keep:
	// ten minutes at the default interval.
	throughputHistory = 120
)

// Console serves the web console. It is an http.Handler; Close stops its
// sampler and closes its Kafka client.
type Console struct {
	opts   Options
	log    *slog.Logger
	clock  clock.Clock
	client *kgo.Client
	admin  *kadm.Client
	mux    *http.ServeMux
	pages  *pageSet
	// csrfToken is a random secret rendered into every form and required
	// back on every POST: another site can make the browser send a POST
	// here but cannot read a page to learn the token.
	csrfToken string

	samples *sampler

	samplerCtx context.Context
	stop       context.CancelFunc
	done       chan struct{}
	// startOne starts the sampler (at New or at the first request), or,
	// run first by Close, marks it as never to start.
	startOne sync.Once
	closeOne sync.Once
}

// New builds a console that talks to the cluster at opts.Brokers and starts
// its sampler. The Kafka client connects lazily, so New succeeds while the
// brokers are still starting; pages show the error until they answer.
func New(opts Options) (*Console, error) {
	if len(opts.Brokers) == 0 {
		return nil, errors.New("console: no bootstrap brokers")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	opts.ThroughputInterval = orDefault(opts.ThroughputInterval, defaultThroughputInterval)
	opts.LagInterval = orDefault(opts.LagInterval, defaultLagInterval)
	opts.RequestTimeout = orDefault(opts.RequestTimeout, defaultRequestTimeout)
	if opts.LagHistory <= 0 {
		opts.LagHistory = defaultLagHistory
	}
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("console: csrf token: %w", err)
	}
	client, err := kgo.NewClient(clientOptions(opts)...)
	if err != nil {
		return nil, fmt.Errorf("console: kafka client: %w", err)
	}
	c := &Console{
		opts: opts, log: opts.Logger, clock: opts.Clock,
		client: client, admin: kadm.NewClient(client),
		pages: pages, csrfToken: hex.EncodeToString(secret),
		samples: newSampler(throughputHistory, opts.LagHistory),
		done:    make(chan struct{}),
	}
	c.routes()
	c.samplerCtx, c.stop = context.WithCancel(context.Background())
	if !opts.SampleOnFirstVisit {
		c.startSampler()
	}
	return c, nil
}

// startSampler starts the sampler once; after Close it does nothing.
func (c *Console) startSampler() {
	c.startOne.Do(func() { go c.runSampler(c.samplerCtx) })
}

// clientOptions bound the one client everything shares: small produce
// buffers (the console produces a record at a time), bounded retries and
// timeouts so a dead cluster fails a page instead of hanging it.
func clientOptions(opts Options) []kgo.Opt {
	o := []kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ClientID("sluice-console"),
		kgo.DialTimeout(5 * time.Second),
		kgo.RequestRetries(3),
		kgo.RetryTimeout(opts.RequestTimeout),
		kgo.MaxBufferedRecords(64),
		kgo.MaxBufferedBytes(maxProduceBytes * 4),
		kgo.ProducerBatchMaxBytes(maxProduceBytes + 1024),
		kgo.ProduceRequestTimeout(opts.RequestTimeout),
		kgo.RecordDeliveryTimeout(opts.RequestTimeout),
		kgo.RecordPartitioner(explicitOrKeyPartitioner{kgo.StickyKeyPartitioner(nil)}),
		kgo.MetadataMinAge(time.Second),
		// The console never consumes through kgo; its raw fetches ask for
		// at most maxFetchResponseBytes. Other responses (Metadata of
		// 10,000 partitions is well under 1 MiB) fit the read cap.
		kgo.FetchMaxBytes(maxFetchResponseBytes),
		kgo.BrokerMaxReadBytes(16 << 20),
	}
	return append(o, opts.ClientOptions...)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close stops the sampler and closes the Kafka client. It is safe to call
// more than once.
func (c *Console) Close() error {
	c.closeOne.Do(func() {
		// A sampler never started has nothing to wait for.
		c.startOne.Do(func() { close(c.done) })
		c.stop()
		<-c.done
		c.client.Close()
	})
	return nil
}

// ServeHTTP serves the console's pages, JSON endpoints and static assets.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.startSampler()
	if !c.hostAllowed(r.Host) {
		http.Error(w, fmt.Sprintf("console: Host %q is not allowed: use an IP address or localhost, "+
			"or list the name in the console's AllowedHosts (protection against DNS rebinding)", r.Host), http.StatusForbidden)
		return
	}
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() {
	m := http.NewServeMux()
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	m.HandleFunc("GET /{$}", c.clusterPage)
	m.HandleFunc("GET /topics", c.topicsPage)
	m.HandleFunc("GET /topics/{topic}", c.topicPage)
	m.HandleFunc("POST /topics/{topic}/configs", c.checkPost(c.alterTopicConfig))
	m.HandleFunc("GET /topics/{topic}/messages", c.messagesPage)
	m.HandleFunc("GET /groups", c.groupsPage)
	m.HandleFunc("GET /groups/{group}", c.groupPage)
	m.HandleFunc("GET /groups/{group}/reset", c.resetPreviewPage)
	m.HandleFunc("POST /groups/{group}/reset", c.checkPost(c.resetOffsets))
	m.HandleFunc("GET /produce", c.producePage)
	m.HandleFunc("POST /produce", c.checkPost(c.produceRecord))
	m.HandleFunc("GET /api/throughput", c.throughputJSON)
	m.HandleFunc("GET /api/groups/{group}/lag", c.groupLagJSON)
	c.mux = m
}

// requestContext bounds the Kafka requests made for one page. It also
// makes kadm send its Metadata requests instead of answering from the
// client's cache (that is what WithAuthorizedOps does besides asking for
// ACL operations), so a topic created a moment ago shows at once.
func (c *Console) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(kadm.WithAuthorizedOps(r.Context()), c.opts.RequestTimeout)
}

// maxFormBytes bounds a POSTed form: a produced record's value is the
// largest field.
const maxFormBytes = 2 * maxProduceBytes

// checkPost guards a state-changing handler: the form must carry the CSRF
// token, and a browser's Origin header (sent on every cross-site POST)
// must name this host.
func (c *Console) checkPost(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseMultipartForm(maxFormBytes); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			http.Error(w, "console: bad form: "+err.Error(), http.StatusBadRequest)
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && !sameHost(origin, r.Host) {
			http.Error(w, "console: cross-origin POST refused (Origin "+origin+")", http.StatusForbidden)
			return
		}
		if r.PostFormValue("csrf") != c.csrfToken {
			http.Error(w, "console: missing or stale CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// hostAllowed reports whether a request's Host header (host[:port]) names
// an IP address, localhost, or one of opts.AllowedHosts. A DNS-rebinding
// page reaches the console under its own domain name, which is none of
// these.
func (c *Console) hostAllowed(hostPort string) bool {
	host := hostPort
	if h, _, err := net.SplitHostPort(hostPort); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return true
	}
	for _, allowed := range c.opts.AllowedHosts {
		if strings.EqualFold(host, allowed) {
			return true
		}
	}
	return false
}
