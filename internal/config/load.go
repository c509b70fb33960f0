package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/internal/vfs"
)

// MaxConfigFileBytes bounds the --config file: a server.properties is a few
// kilobytes, and a bigger file is a wrong path (a log segment, say), not a
// config worth reading into memory.
const MaxConfigFileBytes = 1 << 20

// EnvPrefix starts the environment variables that set broker configs:
// SLUICE_LOG_RETENTION_HOURS sets log.retention.hours.
const EnvPrefix = "SLUICE_"

// cliEnvNames are SLUICE_ variables the command line reads for itself; they
// are not broker configs, so Load neither applies nor warns about them.
var cliEnvNames = []string{"SLUICE_BROKERS"}

// Source says which layer a broker config's value came from. Later layers
// win: a flag over the environment over the file over the default. In
// DescribeConfigs every source but SourceDefault is STATIC_BROKER_CONFIG.
type Source int8

const (
	SourceDefault Source = iota
	SourceFile           // the --config server.properties file
	SourceEnv            // a SLUICE_ environment variable
	SourceFlag           // --set key=value, or a flag such as --data-dir
)

func (s Source) String() string {
	switch s {
	case SourceDefault:
		return "default"
	case SourceFile:
		return "file"
	case SourceEnv:
		return "env"
	case SourceFlag:
		return "flag"
	}
	return fmt.Sprintf("Source(%d)", int8(s))
}

// Sources are the layers Load reads, lowest precedence first.
type Sources struct {
	File  string   // a Kafka server.properties; "" for none
	Env   []string // os.Environ() form: NAME=value
	Sets  []string // --set key=value, in command-line order (the last wins)
	Flags map[string]string
	// Flags are dedicated flags already mapped to their keys (--data-dir
	// to log.dirs, --listen to listeners); they win over --set.
}

// flagNames names the dedicated flags in messages about the keys they set.
var flagNames = map[string]string{LogDirs: "--data-dir", Listeners: "--listen"}

// Broker is the resolved static broker configuration: every key with its
// effective value and where that value came from. It is immutable after
// Load; dynamic configs set through AlterConfigs live in the metadata image.
type Broker struct {
	values  map[string]string
	sources map[string]Source
	// origins say where each non-default value was found, for messages:
	// "server.properties:12", "SLUICE_NODE_ID", "--set", "--listen".
	origins map[string]string
	// listenerOverrides are listener.name.<name>.<key> settings, by that
	// full key with the name lower-cased.
	listenerOverrides map[string]string
}

// setting is one key=value from one layer.
type setting struct {
	key, value string
	source     Source
	origin     string
}

// Load resolves the broker configuration from defaults, the file, the
// environment and the flags. Unknown keys, deprecated keys and ignored
// listeners come back as warnings; a value that does not parse or breaks a
// rule between keys is an error naming the key, its source and what is
// accepted. The file is read through fs, and at most MaxConfigFileBytes.
func Load(fs vfs.FS, src Sources) (*Broker, []string, error) {
	settings, err := collect(fs, src)
	if err != nil {
		return nil, nil, err
	}
	b := defaultBroker()
	var warnings []string
	for _, s := range settings {
		d, ok := lookupStatic(s.key)
		if !ok && b.takeListenerOverride(s) {
			continue
		}
		if !ok {
			warnings = append(warnings, fmt.Sprintf("config: unknown key %q (from %s) ignored", s.key, s.origin))
			continue
		}
		if d.Deprecated != "" {
			warnings = append(warnings, fmt.Sprintf("config: %s (from %s) is deprecated: %s", s.key, s.origin, d.Deprecated))
		}
		b.values[s.key], b.sources[s.key], b.origins[s.key] = s.value, s.source, s.origin
	}
	if err := b.validateValues(); err != nil {
		return nil, warnings, err
	}
	if err := b.resolveAliases(); err != nil {
		return nil, warnings, err
	}
	listenerWarnings, err := b.checkStructure()
	if err != nil {
		return nil, warnings, err
	}
	return b, append(warnings, listenerWarnings...), nil
}

func defaultBroker() *Broker {
	b := &Broker{values: map[string]string{}, sources: map[string]Source{}, origins: map[string]string{}}
	for _, defs := range [][]Def{BrokerConfigs, topicDefaultDefs} {
		for _, d := range defs {
			b.values[d.Name], b.sources[d.Name] = d.Default, SourceDefault
		}
	}
	return b
}

// collect gathers every layer's settings in precedence order, lowest first.
func collect(fs vfs.FS, src Sources) ([]setting, error) {
	var settings []setting
	if src.File != "" {
		data, err := vfs.ReadFile(fs, src.File, MaxConfigFileBytes)
		if errors.Is(err, vfs.ErrFileTooLarge) {
			return nil, fmt.Errorf("config: --config %s: larger than %d bytes; is it a server.properties file?", src.File, MaxConfigFileBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("config: --config: %w", err)
		}
		entries, err := parseProperties(data)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", src.File, err)
		}
		for _, e := range entries {
			origin := fmt.Sprintf("%s:%d", src.File, e.line)
			settings = append(settings, setting{e.key, e.value, SourceFile, origin})
		}
	}
	settings = append(settings, envSettings(src.Env)...)
	for _, kv := range src.Sets {
		key, value, ok := strings.Cut(kv, "=")
		if key = strings.TrimSpace(key); !ok || key == "" {
			return nil, fmt.Errorf("config: --set %q: want key=value", kv)
		}
		settings = append(settings, setting{key, strings.TrimSpace(value), SourceFlag, "--set"})
	}
	keys := make([]string, 0, len(src.Flags))
	for key := range src.Flags {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		origin, ok := flagNames[key]
		if !ok {
			origin = "flag for " + key
		}
		settings = append(settings, setting{key, strings.TrimSpace(src.Flags[key]), SourceFlag, origin})
	}
	return settings, nil
}

// envSettings maps SLUICE_ variables to keys: the rest of the name in lower
// case with '_' for '.'. Kafka's key names contain no '_', so the mapping
// is one to one. Variables the command line reads for itself are skipped
// without a warning.
func envSettings(env []string) []setting {
	var settings []setting
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if slices.Contains(cliEnvNames, name) {
			continue
		}
		key := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "_", ".")
		settings = append(settings, setting{key, strings.TrimSpace(value), SourceEnv, name})
	}
	return settings
}

// invalid formats the error for a value outside what key accepts.
func (b *Broker) invalid(key, want string) error {
	return invalidError(fmt.Sprintf("config: %s=%q (from %s): want %s", key, b.values[key], b.origin(key), want))
}

// invalidError is a start-up config error: its text names the key, the
// value's source and what is accepted, and it matches
// ErrInvalidConfigValue so callers can tell it from an unreadable file.
type invalidError string

func (e invalidError) Error() string { return string(e) }
func (e invalidError) Unwrap() error { return ErrInvalidConfigValue }

func (b *Broker) origin(key string) string {
	if o := b.origins[key]; o != "" {
		return o
	}
	return "default"
}

// validateValues checks every value that was set against its definition
// and reports all the bad ones at once, in key order, so a user fixes a
// file in one pass. An empty value for a key whose default is empty means
// "not set", as a bare `advertised.listeners=` does in Kafka.
func (b *Broker) validateValues() error {
	var errs []error
	for _, key := range sortedKeys(b.values) {
		if b.sources[key] == SourceDefault {
			continue
		}
		d, _ := lookupStatic(key)
		if v := b.values[key]; (v == "" && d.Default == "") || d.valid(v) {
			continue
		}
		errs = append(errs, b.invalid(key, d.Accepted()))
	}
	return errors.Join(errs...)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// alias is one spelling of a key that another key's value can come from.
type alias struct {
	key     string
	convert func(n int64) int64 // nil: copy the text as it is
}

const (
	msPerMinute = 60 * 1000
	msPerHour   = 60 * msPerMinute
)

// timesOrForever converts a count of minutes or hours to milliseconds; any
// negative count means forever (-1), as in Kafka.
func timesOrForever(unit int64) func(int64) int64 {
	return func(n int64) int64 {
		if n < 0 {
			return -1
		}
		return n * unit
	}
}

// resolveAliases settles the keys that have several spellings. Of the
// spellings that were set, the one from the highest layer wins, so
// SLUICE_LOG_RETENTION_HOURS overrides log.retention.ms in the file; within
// one layer Kafka's order decides (log.retention.ms > minutes > hours). The
// winner's value, converted, becomes the canonical key's, with its source.
func (b *Broker) resolveAliases() error {
	b.resolve(LogRetentionMs, []alias{{LogRetentionMs, nil}, {LogRetentionMinutes, timesOrForever(msPerMinute)}, {LogRetentionHours, timesOrForever(msPerHour)}})
	b.resolve(LogRollMs, []alias{{LogRollMs, nil}, {LogRollHours, timesOrForever(msPerHour)}})
	b.resolve(LogDirs, []alias{{LogDirs, nil}, {LogDir, nil}})
	// Kafka lets broker.id stand in for node.id but refuses two different
	// ids: which one the user meant is anyone's guess.
	if b.sources[BrokerID] != SourceDefault && b.sources[NodeID] != SourceDefault &&
		b.Int64(BrokerID) != b.Int64(NodeID) {
		return b.invalid(BrokerID, fmt.Sprintf("the same id as node.id=%s (from %s)", b.values[NodeID], b.origin(NodeID)))
	}
	b.resolve(NodeID, []alias{{NodeID, nil}, {BrokerID, nil}})
	return nil
}

func (b *Broker) resolve(target string, aliases []alias) {
	best := -1
	for i, a := range aliases {
		if b.sources[a.key] == SourceDefault {
			continue
		}
		// Strictly higher only: on a tie the earlier spelling wins.
		if best < 0 || b.sources[a.key] > b.sources[aliases[best].key] {
			best = i
		}
	}
	if best < 0 {
		return
	}
	a := aliases[best]
	value := strings.TrimSpace(b.values[a.key])
	if a.convert != nil {
		n, _ := strconv.ParseInt(value, 10, 64) // validated already
		value = strconv.FormatInt(a.convert(n), 10)
	}
	b.values[target], b.sources[target], b.origins[target] = value, b.sources[a.key], b.origins[a.key]
}

// checkStructure checks the values whose form is richer than their type
// (addresses, voter lists) and the rules between keys.
func (b *Broker) checkStructure() (warnings []string, err error) {
	if dirs := b.List(LogDirs); len(dirs) != 1 || dirs[0] == "" {
		return nil, b.invalid(LogDirs, "one directory (Sluice keeps every partition in a single log dir)")
	}
	warnings, err = b.checkListeners()
	if err != nil {
		return nil, err
	}
	if v := b.values[ControllerListener]; v != "" {
		if _, _, err := splitHostPort(v); err != nil {
			return nil, b.invalid(ControllerListener, "host:port")
		}
	}
	if v := b.values[HTTPListener]; v != "" {
		if _, _, err := splitHostPort(v); err != nil {
			return nil, b.invalid(HTTPListener, "host:port, or empty to disable it")
		}
	}
	if err := b.checkVoters(); err != nil {
		return nil, err
	}
	if err := b.checkConnectionLimits(); err != nil {
		return nil, err
	}
	if q := b.Int64(QueuedMaxRequestBytes); q != -1 && q < b.Int64(SocketRequestMaxBytes) {
		return nil, b.invalid(QueuedMaxRequestBytes, fmt.Sprintf("-1 or at least socket.request.max.bytes=%s (from %s), or no request that large could ever be read",
			b.values[SocketRequestMaxBytes], b.origin(SocketRequestMaxBytes)))
	}
	if b.Int64(GroupMinSessionTimeoutMs) > b.Int64(GroupMaxSessionTimeoutMs) {
		return nil, b.invalid(GroupMinSessionTimeoutMs, fmt.Sprintf("at most group.max.session.timeout.ms=%s (from %s)",
			b.values[GroupMaxSessionTimeoutMs], b.origin(GroupMaxSessionTimeoutMs)))
	}
	topics := TopicValues{BrokerDefaults: b.TopicDefaults()}
	if topics.Int64(MinCompactionLagMs) > topics.Int64(MaxCompactionLagMs) {
		key := topicByName[MinCompactionLagMs].BrokerName
		return nil, b.invalid(key, "at most "+topicByName[MaxCompactionLagMs].BrokerName)
	}
	return warnings, nil
}

// checkListeners requires at least one client listener, each with a
// protocol, and well-formed advertised ones. A Kafka file's
// CONTROLLER://:9093 is legal in Kafka, so it is skipped with a warning.
func (b *Broker) checkListeners() (warnings []string, err error) {
	listeners, warnings, err := b.clientListeners()
	if err != nil {
		if strings.HasPrefix(err.Error(), AdvertisedListeners) {
			return nil, b.invalid(AdvertisedListeners, "NAME://host:port for listeners, with a host clients can reach and a port other than 0 ("+err.Error()+")")
		}
		return nil, b.invalid(Listeners, "a list of NAME://host:port or host:port, each NAME in listener.security.protocol.map ("+err.Error()+")")
	}
	if err := b.checkSecurity(listeners); err != nil {
		return nil, err
	}
	return warnings, nil
}

// checkVoters checks controller.quorum.voters' form (id@host:port, each id
// once), that a node with the controller role is one of the voters, and
// that a broker-only node has voters to find.
func (b *Broker) checkVoters() error {
	voters, err := b.QuorumVoters()
	if err != nil {
		return b.invalid(ControllerQuorumVoters, "a list of id@host:port ("+err.Error()+")")
	}
	isController := slices.Contains(b.List(ProcessRoles), "controller")
	if len(voters) == 0 {
		if !isController {
			return b.invalid(ProcessRoles, "a role list with controller, or controller.quorum.voters set so a broker-only node can find the controllers")
		}
		return nil
	}
	if !isController {
		return nil
	}
	id := b.Int32(NodeID)
	for _, v := range voters {
		if v.ID == id {
			return nil
		}
	}
	return b.invalid(ControllerQuorumVoters, fmt.Sprintf("a list that includes node.id=%d, since this node has the controller role", id))
}

// String returns key's effective value as text; "" when it has none. It
// panics on a key that is not a static broker config: that is a typo in
// the caller, not input.
func (b *Broker) String(key string) string {
	mustBrokerDef(key)
	return b.values[key]
}

// Int64 returns the value of an int or long key; 0 when it has none.
func (b *Broker) Int64(key string) int64 {
	mustBrokerType(key, TypeInt, TypeLong)
	n, _ := strconv.ParseInt(strings.TrimSpace(b.values[key]), 10, 64)
	return n
}

// Int32 returns the value of an int key; 0 when it has none.
func (b *Broker) Int32(key string) int32 {
	mustBrokerType(key, TypeInt)
	n, _ := strconv.ParseInt(strings.TrimSpace(b.values[key]), 10, 32)
	return int32(n)
}

// Bool returns the value of a boolean key.
func (b *Broker) Bool(key string) bool {
	mustBrokerType(key, TypeBoolean)
	v, _ := parseBool(b.values[key])
	return v
}

// Float64 returns the value of a double key; 0 when it has none.
func (b *Broker) Float64(key string) float64 {
	mustBrokerType(key, TypeDouble)
	f, _ := strconv.ParseFloat(strings.TrimSpace(b.values[key]), 64)
	return f
}

// List returns a key's value split on commas, items trimmed.
func (b *Broker) List(key string) []string {
	return SplitList(b.String(key))
}

// Values returns every key that has a value, defaults included, for
// DescribeConfigs. Keys that have several spellings report the resolved
// value under the canonical one (log.retention.ms, log.roll.ms, log.dirs,
// node.id) and what was set under the others.
func (b *Broker) Values() map[string]string {
	m := make(map[string]string, len(b.values))
	for k, v := range b.values {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// Sources returns where each of Values' keys came from.
func (b *Broker) Sources() map[string]Source {
	m := make(map[string]Source, len(b.values))
	for k, v := range b.values {
		if v != "" {
			m[k] = b.sources[k]
		}
	}
	return m
}

// TopicDefaults returns the topic-default keys that were set, by broker key
// (log.retention.ms, log.segment.bytes, ...), for TopicValues'
// BrokerDefaults: a key left at its default is absent, and the topic
// config's own default applies. The retention and roll aliases are
// resolved into log.retention.ms and log.roll.ms.
func (b *Broker) TopicDefaults() map[string]string {
	m := map[string]string{}
	for _, d := range topicDefaultDefs {
		if b.sources[d.Name] != SourceDefault {
			m[d.Name] = b.values[d.Name]
		}
	}
	return m
}

// LogDir returns the directory partitions and meta.properties live in.
func (b *Broker) LogDir() string {
	return b.List(LogDirs)[0] // Load checked there is exactly one
}

// MetadataLogDir returns the metadata quorum's directory.
func (b *Broker) MetadataLogDir() string {
	if dir := b.values[MetadataLogDir]; dir != "" {
		return dir
	}
	return filepath.Join(b.LogDir(), "__cluster_metadata")
}

// Listener returns where the first client listener binds. An empty host
// means every interface; port 0 means a free port, which the caller learns
// from the bound socket.
func (b *Broker) Listener() (host string, port int, err error) {
	listeners, err := b.ClientListeners()
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", Listeners, b.values[Listeners], err)
	}
	return listeners[0].Host, listeners[0].Port, nil
}

// AdvertisedListener returns the address clients of the first listener
// are told to connect to: its advertised.listeners entry, else the listener
// with an all-interfaces host replaced by localhost (the one name sure to
// reach this machine). Port 0 is the caller's to replace with the bound port.
func (b *Broker) AdvertisedListener() (host string, port int, err error) {
	listeners, err := b.ClientListeners()
	if err != nil {
		return "", 0, err
	}
	return listeners[0].AdvertisedHost, listeners[0].AdvertisedPort, nil
}

// ControllerListener returns where a cluster of one's controller listens:
// controller.listener, else a free port on the loopback interface, so two
// nodes on one machine never collide on a fixed controller port.
func (b *Broker) ControllerListener() (host string, port int, err error) {
	v := b.values[ControllerListener]
	if v == "" {
		return "127.0.0.1", 0, nil
	}
	host, port, err = splitHostPort(v)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", ControllerListener, v, err)
	}
	return host, port, nil
}

// Voter is one entry of controller.quorum.voters.
type Voter struct {
	ID   int32
	Host string
	Port int
}

// QuorumVoters returns controller.quorum.voters; none means a cluster of
// one.
func (b *Broker) QuorumVoters() ([]Voter, error) {
	var voters []Voter
	for _, item := range b.List(ControllerQuorumVoters) {
		idText, addr, ok := strings.Cut(item, "@")
		id, err := strconv.ParseInt(idText, 10, 32)
		if !ok || err != nil || id < 0 {
			return nil, fmt.Errorf("%q is not id@host:port", item)
		}
		host, port, err := splitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		if host == "" || port == 0 {
			return nil, fmt.Errorf("%q: a voter needs a host and a non-zero port", item)
		}
		if slices.ContainsFunc(voters, func(v Voter) bool { return v.ID == int32(id) }) {
			return nil, fmt.Errorf("node %d given twice", id)
		}
		voters = append(voters, Voter{ID: int32(id), Host: host, Port: port})
	}
	return voters, nil
}

const plaintextName = "PLAINTEXT"

// listener is one entry of listeners: NAME://host:port.
type listener struct {
	name string
	host string
	port int
}

// parseListeners reads a listeners value. An entry without a NAME:// is
// PLAINTEXT, so `--listen localhost:9092` and Kafka's
// PLAINTEXT://localhost:9092 mean the same. Names are upper-cased, as Kafka
// does with listener names.
func parseListeners(value string) ([]listener, error) {
	items := SplitList(value)
	if len(items) == 0 {
		return nil, errors.New("no listener")
	}
	listeners := make([]listener, 0, len(items))
	for _, item := range items {
		name, addr, ok := strings.Cut(item, "://")
		if !ok {
			name, addr = plaintextName, item
		}
		name = strings.ToUpper(name)
		if name == "" {
			return nil, fmt.Errorf("%q has no listener name", item)
		}
		host, port, err := splitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		if slices.ContainsFunc(listeners, func(l listener) bool { return l.name == name }) {
			return nil, fmt.Errorf("listener %s given twice", name)
		}
		listeners = append(listeners, listener{name, host, port})
	}
	return listeners, nil
}

// splitHostPort reads host:port, [v6]:port or :port (empty host).
func splitHostPort(addr string) (host string, port int, err error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, errors.New("want host:port")
	}
	p, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: want 0 to 65535", portText)
	}
	if strings.ContainsAny(host, " \t/") {
		return "", 0, fmt.Errorf("host %q", host)
	}
	return host, int(p), nil
}

// isAnyHost says whether host means every interface.
func isAnyHost(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::"
}

func mustBrokerDef(key string) *Def {
	d, ok := lookupStatic(key)
	if !ok {
		panic(fmt.Sprintf("config: %q is not a broker config", key))
	}
	return d
}

func mustBrokerType(key string, types ...Type) {
	d := mustBrokerDef(key)
	if !slices.Contains(types, d.Type) {
		panic(fmt.Sprintf("config: %s is a %s, not a %s", key, d.Type, types[0]))
	}
}

// ParseProperties reads the subset of Java's .properties format that
// server.properties files use: # and ! comment lines; key=value, key: value
// and key value; a trailing backslash continuing a line; \t \n \r \f \uXXXX
// escapes (any other escaped character stands for itself). Keys and values
// are trimmed, as Kafka trims values when it parses them. A repeated key
// keeps its last value. Errors name the line.
func ParseProperties(data []byte) (map[string]string, error) {
	entries, err := parseProperties(data)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		m[e.key] = e.value
	}
	return m, nil
}

// property is one key=value of a properties file, with the line it starts
// on.
type property struct {
	key, value string
	line       int
}

func parseProperties(data []byte) ([]property, error) {
	lines := splitLines(string(data))
	var props []property
	for i := 0; i < len(lines); i++ {
		start := i
		logical := strings.TrimLeft(lines[i], " \t\f")
		if logical == "" || logical[0] == '#' || logical[0] == '!' {
			continue // a comment does not continue onto the next line
		}
		for continues(logical) && i+1 < len(lines) {
			i++
			logical = logical[:len(logical)-1] + strings.TrimLeft(lines[i], " \t\f")
		}
		if continues(logical) { // a backslash at the end of the file
			logical = logical[:len(logical)-1]
		}
		rawKey, rawValue := splitKeyValue(logical)
		key, err := unescape(rawKey)
		// Keys are trimmed like values, so one of escaped spaces is empty.
		if key = strings.TrimSpace(key); err == nil && key == "" {
			err = errors.New("empty key")
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start+1, err)
		}
		value, err := unescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", start+1, key, err)
		}
		props = append(props, property{key, strings.TrimSpace(value), start + 1})
	}
	return props, nil
}

// splitLines splits on \n, \r\n or \r, as Java's line reader does.
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(s, "\n")
}

// continues says whether a line ends in an odd number of backslashes: the
// last one escapes the line break; an even number are escaped backslashes.
func continues(line string) bool {
	n := len(line) - len(strings.TrimRight(line, `\`))
	return n%2 == 1
}

// splitKeyValue splits a logical line at the first unescaped '=', ':' or
// whitespace; whitespace around the separator, and one '=' or ':' after
// whitespace, belong to neither side.
func splitKeyValue(line string) (key, value string) {
	end := len(line)
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' {
			i++ // the escaped character is part of the key
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			end = i
			break
		}
	}
	key, rest := line[:end], line[end:]
	rest = strings.TrimLeft(rest, " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	return key, rest
}

// unescape resolves a properties file's backslash escapes.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			break // a lone trailing backslash stands for nothing
		}
		switch s[i] {
		case 't':
			out.WriteByte('\t')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 'f':
			out.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\uXXXX escape %q", s[i-1:])
			}
			r, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("malformed \\uXXXX escape %q", s[i-1:i+5])
			}
			out.WriteRune(rune(r))
			i += 4
		default:
			out.WriteByte(s[i])
		}
	}
	return out.String(), nil
}
