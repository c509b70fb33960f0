package config

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

const confPath = "/conf/server.properties"

// memWithFile returns an in-memory FS holding confPath with text.
func memWithFile(t *testing.T, text string) vfs.FS {
	t.Helper()
	fs := vfs.NewMem()
	if err := fs.MkdirAll("/conf", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := vfs.WriteFileAtomic(fs, confPath, []byte(text)); err != nil {
		t.Fatal(err)
	}
	return fs
}

func mustLoad(t *testing.T, fs vfs.FS, src Sources) (*Broker, []string) {
	t.Helper()
	if fs == nil {
		fs = vfs.NewMem()
	}
	b, warnings, err := Load(fs, src)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return b, warnings
}

func loadErr(t *testing.T, fs vfs.FS, src Sources) error {
	t.Helper()
	if fs == nil {
		fs = vfs.NewMem()
	}
	_, _, err := Load(fs, src)
	if err == nil {
		t.Fatalf("Load(%+v) succeeded, want an error", src)
	}
	return err
}

func TestBrokerLoadDefaults(t *testing.T) {
	b, warnings := mustLoad(t, nil, Sources{})
	if len(warnings) != 0 {
		t.Errorf("warnings = %q", warnings)
	}
	if got := b.Int32(NodeID); got != 1 {
		t.Errorf("node.id = %d", got)
	}
	if got := b.LogDir(); got != "./data" {
		t.Errorf("LogDir = %q", got)
	}
	if got := b.MetadataLogDir(); got != "data/__cluster_metadata" {
		t.Errorf("MetadataLogDir = %q", got)
	}
	if !b.Bool(AutoCreateTopicsEnable) || b.String(LogFlushPolicy) != FlushAlways {
		t.Error("auto.create.topics.enable or log.flush.policy not at default")
	}
	if got := b.List(ProcessRoles); len(got) != 2 {
		t.Errorf("process.roles = %q", got)
	}
	if host, port, err := b.Listener(); err != nil || host != "localhost" || port != 9092 {
		t.Errorf("Listener = %q, %d, %v", host, port, err)
	}
	if host, port, err := b.ControllerListener(); err != nil || host != "127.0.0.1" || port != 0 {
		t.Errorf("ControllerListener = %q, %d, %v", host, port, err)
	}
	if got := b.TopicDefaults(); len(got) != 0 {
		t.Errorf("TopicDefaults = %v, want none set", got)
	}
	for key, source := range b.Sources() {
		if source != SourceDefault {
			t.Errorf("%s: source %s, want default", key, source)
		}
	}
	if _, ok := b.Values()[AdvertisedListeners]; ok {
		t.Error("Values has advertised.listeners, which has no value")
	}
	if got := b.Values()[LogRetentionMs]; got != "604800000" {
		t.Errorf("Values[log.retention.ms] = %q", got)
	}
}

func TestBrokerLoadPrecedence(t *testing.T) {
	fs := memWithFile(t, "num.partitions=2\ngroup.max.size=20\nmax.connections=200\nfetch.max.bytes=2000\n")
	src := Sources{
		File:  confPath,
		Env:   []string{"SLUICE_GROUP_MAX_SIZE=30", "SLUICE_MAX_CONNECTIONS=300", "SLUICE_FETCH_MAX_BYTES=3000"},
		Sets:  []string{"max.connections=400", "fetch.max.bytes=4000", "fetch.max.bytes=4100"},
		Flags: map[string]string{LogDirs: "/flagdir"},
	}
	b, warnings := mustLoad(t, fs, src)
	if len(warnings) != 0 {
		t.Errorf("warnings = %q", warnings)
	}
	tests := []struct {
		key    string
		want   int64
		source Source
	}{
		{OffsetsTopicNumPartitions, 50, SourceDefault},
		{NumPartitions, 2, SourceFile},
		{GroupMaxSize, 30, SourceEnv},
		{MaxConnections, 400, SourceFlag},
		{FetchMaxBytes, 4100, SourceFlag}, // the last --set wins
	}
	for _, tt := range tests {
		if got := b.Int64(tt.key); got != tt.want {
			t.Errorf("%s = %d, want %d", tt.key, got, tt.want)
		}
		if got := b.Sources()[tt.key]; got != tt.source {
			t.Errorf("%s source = %s, want %s", tt.key, got, tt.source)
		}
	}
	if b.LogDir() != "/flagdir" || b.Sources()[LogDirs] != SourceFlag {
		t.Errorf("log.dirs = %q from %s", b.LogDir(), b.Sources()[LogDirs])
	}
	if got := b.MetadataLogDir(); got != "/flagdir/__cluster_metadata" {
		t.Errorf("MetadataLogDir = %q", got)
	}
}

func TestBrokerLoadFlagsBeatSet(t *testing.T) {
	b, _ := mustLoad(t, nil, Sources{
		Sets:  []string{"listeners=PLAINTEXT://localhost:1111"},
		Flags: map[string]string{Listeners: "127.0.0.1:0"},
	})
	if host, port, err := b.Listener(); err != nil || host != "127.0.0.1" || port != 0 {
		t.Errorf("Listener = %q, %d, %v; want --listen's 127.0.0.1:0", host, port, err)
	}
}

func TestBrokerLoadEnv(t *testing.T) {
	b, warnings := mustLoad(t, nil, Sources{Env: []string{
		"PATH=/usr/bin",
		"KAFKA_LOG_RETENTION_HOURS=5",    // not ours
		"SLUICE_BROKERS=localhost:9092",  // the CLI's, not a broker key
		"SLUICE_LOG_RETENTION_HOURS= 1 ", // trimmed
		"SLUICE_auto_create_topics_enable=false",
		"SLUICE_NOT_A_KEY=1",
		"SLUICE_NO_EQUALS",
		"=C:=C:\\", // Windows oddity: no name
	}})
	if len(warnings) != 1 || !strings.Contains(warnings[0], `"not.a.key"`) || !strings.Contains(warnings[0], "SLUICE_NOT_A_KEY") {
		t.Errorf("warnings = %q, want one naming not.a.key and SLUICE_NOT_A_KEY", warnings)
	}
	if got := b.TopicDefaults()[LogRetentionMs]; got != "3600000" {
		t.Errorf("log.retention.ms = %q, want 3600000", got)
	}
	if b.Bool(AutoCreateTopicsEnable) {
		t.Error("auto.create.topics.enable still true")
	}
}

func TestBrokerLoadUnknownKeysWarn(t *testing.T) {
	fs := memWithFile(t, "# a Kafka file\ncontroller.listener.names=CONTROLLER\nnum.partitions=3\n")
	b, warnings := mustLoad(t, fs, Sources{File: confPath, Sets: []string{"no.such.key=1"}})
	if b.Int32(NumPartitions) != 3 {
		t.Errorf("num.partitions = %d", b.Int32(NumPartitions))
	}
	want := []string{
		`config: unknown key "controller.listener.names" (from /conf/server.properties:2) ignored`,
		`config: unknown key "no.such.key" (from --set) ignored`,
	}
	if strings.Join(warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings =\n%s\nwant\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
	if _, ok := b.Values()["no.such.key"]; ok {
		t.Error("an unknown key reached Values")
	}
}

func TestBrokerLoadDeprecatedWarns(t *testing.T) {
	b, warnings := mustLoad(t, nil, Sources{Sets: []string{"broker.id=4", "log.message.downconversion.enable=false"}})
	if len(warnings) != 2 {
		t.Errorf("warnings = %q, want two deprecations", warnings)
	}
	if b.Int32(NodeID) != 4 {
		t.Errorf("node.id = %d, want broker.id's 4", b.Int32(NodeID))
	}
}

func TestBrokerLoadInvalidValues(t *testing.T) {
	tests := []struct {
		name string
		src  Sources
		file string
		want string
	}{
		{"set", Sources{Sets: []string{"log.retention.hours=abc"}}, "",
			`config: log.retention.hours="abc" (from --set): want an integer `},
		{"env", Sources{Env: []string{"SLUICE_LOG_FLUSH_POLICY=sometimes"}}, "",
			`config: log.flush.policy="sometimes" (from SLUICE_LOG_FLUSH_POLICY): want one of always, interval, never`},
		{"file", Sources{File: confPath}, "\n\nauto.create.topics.enable = yes\n",
			`config: auto.create.topics.enable="yes" (from /conf/server.properties:3): want true or false`},
		{"flag", Sources{Flags: map[string]string{Listeners: "localhost"}}, "",
			`config: listeners="localhost" (from --listen): want a list of NAME://host:port or host:port`},
		{"topic default", Sources{Sets: []string{"log.segment.bytes=10"}}, "",
			`config: log.segment.bytes="10" (from --set): want an integer `},
		{"roles", Sources{Sets: []string{"process.roles=broker,broker"}}, "",
			`config: process.roles="broker,broker" (from --set): want a comma-separated list of broker, controller`},
		{"two dirs", Sources{Sets: []string{"log.dirs=/a,/b"}}, "",
			`config: log.dirs="/a,/b" (from --set): want one directory`},
		{"broker.id disagrees", Sources{Sets: []string{"node.id=2", "broker.id=3"}}, "",
			`config: broker.id="3" (from --set): want the same id as node.id=2 (from --set)`},
		{"node id zero", Sources{Sets: []string{"node.id=0"}}, "",
			`config: node.id="0" (from --set): want an integer in [1, 2147483647]`},
		{"queued below frame", Sources{Sets: []string{"queued.max.request.bytes=1000"}}, "",
			`config: queued.max.request.bytes="1000" (from --set): want -1 or at least socket.request.max.bytes=104857600 (from default)`},
		{"session timeouts", Sources{Sets: []string{"group.min.session.timeout.ms=10", "group.max.session.timeout.ms=5"}}, "",
			`config: group.min.session.timeout.ms="10" (from --set): want at most group.max.session.timeout.ms=5`},
		{"voters form", Sources{Sets: []string{"controller.quorum.voters=1@nohost"}}, "",
			`config: controller.quorum.voters="1@nohost" (from --set): want a list of id@host:port`},
		{"not a voter", Sources{Sets: []string{"controller.quorum.voters=2@h:9093"}}, "",
			`want a list that includes node.id=1`},
		{"broker only alone", Sources{Sets: []string{"process.roles=broker"}}, "",
			`config: process.roles="broker" (from --set): want a role list with controller`},
		{"advertised any", Sources{Sets: []string{"advertised.listeners=PLAINTEXT://0.0.0.0:9092"}}, "",
			`config: advertised.listeners="PLAINTEXT://0.0.0.0:9092" (from --set): want NAME://host:port`},
		{"controller listener", Sources{Sets: []string{"controller.listener=nohost"}}, "",
			`config: controller.listener="nohost" (from --set): want host:port`},
		{"compaction lags", Sources{Sets: []string{"log.cleaner.min.compaction.lag.ms=10", "log.cleaner.max.compaction.lag.ms=5"}}, "",
			`config: log.cleaner.min.compaction.lag.ms="10" (from --set): want at most log.cleaner.max.compaction.lag.ms`},
		{"set without =", Sources{Sets: []string{"num.partitions"}}, "",
			`config: --set "num.partitions": want key=value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fs vfs.FS
			if tt.file != "" {
				fs = memWithFile(t, tt.file)
			}
			err := loadErr(t, fs, tt.src)
			if strings.HasPrefix(tt.want, "config: --set") == errors.Is(err, ErrInvalidConfigValue) {
				t.Errorf("errors.Is(%q, ErrInvalidConfigValue) = %v", err, !strings.HasPrefix(tt.want, "config: --set"))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

func TestBrokerLoadReportsEveryInvalidValue(t *testing.T) {
	err := loadErr(t, nil, Sources{Sets: []string{"num.partitions=0", "node.id=-1"}})
	for _, key := range []string{"num.partitions", "node.id"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
}

func TestBrokerLoadOverriddenInvalidValueIsFine(t *testing.T) {
	// Only effective values are checked: a flag can fix a bad file.
	fs := memWithFile(t, "num.partitions=zero\n")
	b, _ := mustLoad(t, fs, Sources{File: confPath, Sets: []string{"num.partitions=4"}})
	if b.Int32(NumPartitions) != 4 {
		t.Errorf("num.partitions = %d", b.Int32(NumPartitions))
	}
}

func TestBrokerLoadFileErrors(t *testing.T) {
	err := loadErr(t, vfs.NewMem(), Sources{File: "/missing.properties"})
	if !strings.Contains(err.Error(), "/missing.properties") {
		t.Errorf("error %q does not name the file", err)
	}
	big := memWithFile(t, strings.Repeat("# padding\n", MaxConfigFileBytes/10+1))
	err = loadErr(t, big, Sources{File: confPath})
	if !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Errorf("error %q does not give the limit", err)
	}
	bad := memWithFile(t, "a=1\nb=\\u12\n")
	err = loadErr(t, bad, Sources{File: confPath})
	if !strings.Contains(err.Error(), confPath+": line 2") {
		t.Errorf("error %q does not name file and line", err)
	}
}

func TestBrokerRetentionAliases(t *testing.T) {
	tests := []struct {
		name string
		file string
		src  Sources
		want string // log.retention.ms in TopicDefaults; "" for unset
	}{
		{"none", "", Sources{}, ""},
		{"hours", "", Sources{Sets: []string{"log.retention.hours=2"}}, "7200000"},
		{"minutes", "", Sources{Sets: []string{"log.retention.minutes=3"}}, "180000"},
		{"minutes beat hours", "", Sources{Sets: []string{"log.retention.minutes=3", "log.retention.hours=2"}}, "180000"},
		{"ms beats all", "", Sources{Sets: []string{"log.retention.hours=2", "log.retention.ms=5", "log.retention.minutes=3"}}, "5"},
		{"same layer file", "log.retention.ms=5\nlog.retention.hours=2\n", Sources{File: confPath}, "5"},
		{"higher layer hours beat file ms", "log.retention.ms=5\n", Sources{File: confPath, Env: []string{"SLUICE_LOG_RETENTION_HOURS=1"}}, "3600000"},
		{"negative hours forever", "", Sources{Sets: []string{"log.retention.hours=-1"}}, "-1"},
		{"negative minutes forever", "", Sources{Sets: []string{"log.retention.minutes=-1"}}, "-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fs vfs.FS
			if tt.file != "" {
				fs = memWithFile(t, tt.file)
			}
			b, _ := mustLoad(t, fs, tt.src)
			got, ok := b.TopicDefaults()[LogRetentionMs]
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("log.retention.ms = %q (set %v), want %q", got, ok, tt.want)
			}
			effective := TopicValues{BrokerDefaults: b.TopicDefaults()}.Int64(RetentionMs)
			if tt.want == "" && effective != 604800000 {
				t.Errorf("effective retention.ms = %d, want 7 days", effective)
			}
		})
	}
}

func TestBrokerRollAndDirAliases(t *testing.T) {
	b, _ := mustLoad(t, nil, Sources{Sets: []string{"log.roll.hours=1", "log.dir=/one"}})
	if got := b.TopicDefaults()[LogRollMs]; got != "3600000" {
		t.Errorf("log.roll.ms = %q", got)
	}
	if b.LogDir() != "/one" {
		t.Errorf("LogDir = %q, want log.dir's", b.LogDir())
	}
	b, _ = mustLoad(t, nil, Sources{Sets: []string{"log.roll.ms=7", "log.roll.hours=1", "log.dir=/one", "log.dirs=/many"}})
	if got := b.TopicDefaults()[LogRollMs]; got != "7" {
		t.Errorf("log.roll.ms = %q, want 7 (log.roll.ms beats hours)", got)
	}
	if b.LogDir() != "/many" {
		t.Errorf("LogDir = %q, want log.dirs' (it beats log.dir)", b.LogDir())
	}
	// --data-dir (log.dirs) beats log.dir in the file.
	fs := memWithFile(t, "log.dir=/file\n")
	b, _ = mustLoad(t, fs, Sources{File: confPath, Flags: map[string]string{LogDirs: "/flag"}})
	if b.LogDir() != "/flag" {
		t.Errorf("LogDir = %q, want --data-dir's", b.LogDir())
	}
}

func TestBrokerTopicDefaults(t *testing.T) {
	fs := memWithFile(t, "log.segment.bytes=1048576\nlog.cleanup.policy=compact\nnum.partitions=3\n")
	b, _ := mustLoad(t, fs, Sources{File: confPath, Sets: []string{"message.max.bytes=2000", "log.retention.hours=1"}})
	want := map[string]string{
		"log.segment.bytes":  "1048576",
		"log.cleanup.policy": "compact",
		"message.max.bytes":  "2000",
		LogRetentionMs:       "3600000",
	}
	if got := b.TopicDefaults(); !maps.Equal(got, want) {
		t.Errorf("TopicDefaults = %v\nwant %v", got, want)
	}
	v := TopicValues{BrokerDefaults: b.TopicDefaults()}
	if v.Int64(SegmentBytes) != 1048576 || v.Int64(RetentionMs) != 3600000 || v.List(CleanupPolicy)[0] != "compact" {
		t.Error("TopicValues does not read the broker defaults")
	}
}

func TestBrokerValuesAndSources(t *testing.T) {
	fs := memWithFile(t, "log.retention.minutes=10\n")
	b, _ := mustLoad(t, fs, Sources{File: confPath, Env: []string{"SLUICE_BROKER_RACK=r1"}})
	values, sources := b.Values(), b.Sources()
	if len(values) != len(sources) {
		t.Fatalf("%d values, %d sources", len(values), len(sources))
	}
	if values[LogRetentionMinutes] != "10" || values[LogRetentionMs] != "600000" || sources[LogRetentionMs] != SourceFile {
		t.Errorf("retention: minutes=%q ms=%q from %s", values[LogRetentionMinutes], values[LogRetentionMs], sources[LogRetentionMs])
	}
	if values[BrokerRack] != "r1" || sources[BrokerRack] != SourceEnv {
		t.Errorf("broker.rack = %q from %s", values[BrokerRack], sources[BrokerRack])
	}
	values[BrokerRack] = "changed"
	if b.String(BrokerRack) != "r1" {
		t.Error("Values returned the Broker's own map")
	}
}

func TestBrokerAccessorsPanicOnTypos(t *testing.T) {
	b, _ := mustLoad(t, nil, Sources{})
	for name, f := range map[string]func(){
		"unknown key":   func() { b.String("num.partitons") },
		"wrong type":    func() { b.Bool(NumPartitions) },
		"long as int32": func() { b.Int32(LogRetentionCheckIntervalMs) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestBrokerListeners(t *testing.T) {
	tests := []struct {
		listeners        string
		host             string
		port             int
		advertised       string
		advertisedPort   int
		advertisedConfig string
		warnings         int
	}{
		{listeners: "localhost:9092", host: "localhost", port: 9092, advertised: "localhost", advertisedPort: 9092},
		{listeners: "PLAINTEXT://127.0.0.1:19092", host: "127.0.0.1", port: 19092, advertised: "127.0.0.1", advertisedPort: 19092},
		{listeners: "plaintext://127.0.0.1:1", host: "127.0.0.1", port: 1, advertised: "127.0.0.1", advertisedPort: 1},
		{listeners: "[::1]:9092", host: "::1", port: 9092, advertised: "::1", advertisedPort: 9092},
		{listeners: ":9092", host: "", port: 9092, advertised: "localhost", advertisedPort: 9092},
		{listeners: "0.0.0.0:0", host: "0.0.0.0", port: 0, advertised: "localhost", advertisedPort: 0},
		{listeners: "PLAINTEXT://[::]:9092", host: "::", port: 9092, advertised: "localhost", advertisedPort: 9092},
		{listeners: "CONTROLLER://:9093, PLAINTEXT://:9092", host: "", port: 9092, advertised: "localhost", advertisedPort: 9092, warnings: 1},
		{listeners: ":9092", host: "", port: 9092, advertisedConfig: "PLAINTEXT://broker1.example:9092", advertised: "broker1.example", advertisedPort: 9092},
		{listeners: ":9092", host: "", port: 9092, advertisedConfig: "broker1.example:19092", advertised: "broker1.example", advertisedPort: 19092},
	}
	for _, tt := range tests {
		t.Run(tt.listeners+" "+tt.advertisedConfig, func(t *testing.T) {
			sets := []string{"listeners=" + tt.listeners}
			if tt.advertisedConfig != "" {
				sets = append(sets, "advertised.listeners="+tt.advertisedConfig)
			}
			b, warnings := mustLoad(t, nil, Sources{Sets: sets})
			if len(warnings) != tt.warnings {
				t.Errorf("warnings = %q", warnings)
			}
			host, port, err := b.Listener()
			if err != nil || host != tt.host || port != tt.port {
				t.Errorf("Listener = %q, %d, %v; want %q, %d", host, port, err, tt.host, tt.port)
			}
			host, port, err = b.AdvertisedListener()
			if err != nil || host != tt.advertised || port != tt.advertisedPort {
				t.Errorf("AdvertisedListener = %q, %d, %v; want %q, %d", host, port, err, tt.advertised, tt.advertisedPort)
			}
		})
	}
}

func TestBrokerListenersInvalid(t *testing.T) {
	for _, listeners := range []string{
		"", "localhost", "localhost:99999", "localhost:-1", "PLAINTEXT://", "://h:1",
		"CONTROLLER://:9093", "PLAINTEXT://:1,PLAINTEXT://:2", "host name:1", "::1:9092",
	} {
		err := loadErr(t, nil, Sources{Flags: map[string]string{Listeners: listeners}})
		if !strings.Contains(err.Error(), "listeners=") || !strings.Contains(err.Error(), "--listen") {
			t.Errorf("listeners %q: error %q does not name the key and flag", listeners, err)
		}
	}
}

func TestBrokerQuorumVoters(t *testing.T) {
	b, _ := mustLoad(t, nil, Sources{Sets: []string{"node.id=2", "controller.quorum.voters=1@a:9093, 2@[::1]:9094"}})
	voters, err := b.QuorumVoters()
	if err != nil || len(voters) != 2 || voters[1] != (Voter{ID: 2, Host: "::1", Port: 9094}) {
		t.Errorf("QuorumVoters = %+v, %v", voters, err)
	}
	// A broker-only node needs no place among the voters.
	mustLoad(t, nil, Sources{Sets: []string{"node.id=5", "process.roles=broker", "controller.quorum.voters=1@a:9093"}})
	err = loadErr(t, nil, Sources{Sets: []string{"controller.quorum.voters=1@a:9093,1@b:9093"}})
	if !strings.Contains(err.Error(), "node 1 given twice") {
		t.Errorf("error %q", err)
	}
}

func TestBrokerControllerListener(t *testing.T) {
	b, _ := mustLoad(t, nil, Sources{Sets: []string{"controller.listener=127.0.0.1:19093"}})
	if host, port, err := b.ControllerListener(); err != nil || host != "127.0.0.1" || port != 19093 {
		t.Errorf("ControllerListener = %q, %d, %v", host, port, err)
	}
}

func TestBrokerLoadEmptyMeansUnset(t *testing.T) {
	fs := memWithFile(t, "advertised.listeners=\nbroker.rack=\nmetadata.log.dir=\n")
	b, _ := mustLoad(t, fs, Sources{File: confPath})
	if host, _, err := b.AdvertisedListener(); err != nil || host != "localhost" {
		t.Errorf("AdvertisedListener = %q, %v", host, err)
	}
	if b.MetadataLogDir() != "data/__cluster_metadata" {
		t.Errorf("MetadataLogDir = %q", b.MetadataLogDir())
	}
	err := loadErr(t, nil, Sources{Sets: []string{"num.partitions="}})
	if !errors.Is(err, ErrInvalidConfigValue) || !strings.Contains(err.Error(), `num.partitions=""`) {
		t.Errorf("error %q", err)
	}
}

func TestPropertiesParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"equals", "a=1\nb = 2\n", map[string]string{"a": "1", "b": "2"}},
		{"colon", "a:1\nb : 2", map[string]string{"a": "1", "b": "2"}},
		{"space", "a 1\nb\t\t2", map[string]string{"a": "1", "b": "2"}},
		{"space then equals", "a  =  1", map[string]string{"a": "1"}},
		{"only first separator", "a==1\nb=c=d\nc:=1", map[string]string{"a": "=1", "b": "c=d", "c": "=1"}},
		{"comments", "# c\n! c\n  # indented\na=1 # not a comment\n", map[string]string{"a": "1 # not a comment"}},
		{"blank lines", "\n\n   \n\ta=1\n\n", map[string]string{"a": "1"}},
		{"key only", "a\nb=\nc:", map[string]string{"a": "", "b": "", "c": ""}},
		{"trailing space trimmed", "a=1   \t\n", map[string]string{"a": "1"}},
		{"crlf and cr", "a=1\r\nb=2\rc=3", map[string]string{"a": "1", "b": "2", "c": "3"}},
		{"continuation", "a=one,\\\n    two,\\\n\tthree\nb=2", map[string]string{"a": "one,two,three", "b": "2"}},
		{"escaped backslash is not continuation", "a=x\\\\\nb=2", map[string]string{"a": `x\`, "b": "2"}},
		{"continuation at eof", "a=1\\", map[string]string{"a": "1"}},
		{"comment does not continue", "# c \\\na=1", map[string]string{"a": "1"}},
		{"escapes", `a=tab\there\nnl\u00e9\\\:\=\#x`, map[string]string{"a": "tab\there\nnlé\\:=#x"}},
		{"escaped separator in key", `my\=key=v` + "\n" + `sp\ ace=v`, map[string]string{"my=key": "v", "sp ace": "v"}},
		{"duplicate last wins", "a=1\na=2", map[string]string{"a": "2"}},
		{"utf8 kept", "a=héllo", map[string]string{"a": "héllo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProperties([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseProperties(%q): %v", tt.in, err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("ParseProperties(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPropertiesErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a=1\nb=\\u12", "line 2: b: malformed \\uXXXX escape"},
		{"a=1\n\nb=\\uzzzz", "line 3: b: malformed"},
		{"=1", "line 1: empty key"},
		{"\\ =1", "line 1: empty key"},
		{"a=1\n  : x", "line 2: empty key"},
		{"a=1\\\n\\\nz=\\u0", "line 1: a: malformed"}, // three lines, one entry
		{"a=x\\\n\\u00", "line 1: a: malformed"},      // the error names where the entry starts
	}
	for _, tt := range tests {
		_, err := ParseProperties([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseProperties(%q) error = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestPropertiesKafkaSample(t *testing.T) {
	// The shape of Kafka's config/server.properties for KRaft.
	sample := `############################# Server Basics #############################
# The role of this server.
process.roles=broker,controller

# The node id associated with this instance's roles
node.id=1

controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
`
	fs := memWithFile(t, sample)
	b, warnings := mustLoad(t, fs, Sources{File: confPath})
	if len(warnings) != 1 { // the CONTROLLER listener
		t.Errorf("warnings = %q", warnings)
	}
	if b.LogDir() != "/tmp/kraft-combined-logs" {
		t.Errorf("LogDir = %q", b.LogDir())
	}
	if host, port, err := b.AdvertisedListener(); err != nil || host != "localhost" || port != 9092 {
		t.Errorf("AdvertisedListener = %q, %d, %v", host, port, err)
	}
}

func FuzzParseProperties(f *testing.F) {
	for _, seed := range []string{"a=1", "a\\\n b", `\u00e9=\t`, "#x\n!y\nk v", "a=\\u12"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseProperties(data)
		if err != nil {
			return
		}
		for k := range m {
			if k == "" {
				t.Fatalf("empty key from %q", data)
			}
		}
	})
}

func TestBrokerSecureListeners(t *testing.T) {
	b, warnings := mustLoad(t, nil, Sources{Sets: []string{
		"listeners=PLAINTEXT://127.0.0.1:0,SSL://:9093,INTERNAL://127.0.0.1:9094",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,INTERNAL:SASL_SSL",
		"advertised.listeners=SSL://broker1.example:19093",
		"inter.broker.listener.name=internal",
		"ssl.certificate.location=/c.pem", "ssl.key.location=/k.pem",
		"listener.name.ssl.ssl.client.auth=required", "listener.name.ssl.ssl.ca.location=/ca.pem",
	}})
	if len(warnings) != 0 {
		t.Errorf("warnings = %q", warnings)
	}
	listeners, err := b.ClientListeners()
	if err != nil || len(listeners) != 3 {
		t.Fatalf("ClientListeners = %+v, %v", listeners, err)
	}
	want := []ListenerConfig{
		{Name: "PLAINTEXT", SecurityProtocol: "PLAINTEXT", Host: "127.0.0.1", AdvertisedHost: "127.0.0.1"},
		{Name: "SSL", SecurityProtocol: "SSL", Host: "", Port: 9093, AdvertisedHost: "broker1.example", AdvertisedPort: 19093},
		{Name: "INTERNAL", SecurityProtocol: "SASL_SSL", Host: "127.0.0.1", Port: 9094, AdvertisedHost: "127.0.0.1", AdvertisedPort: 9094},
	}
	for i := range want {
		if listeners[i] != want[i] {
			t.Errorf("listener %d = %+v, want %+v", i, listeners[i], want[i])
		}
	}
	if got := b.InterBrokerListener(); got != "INTERNAL" {
		t.Errorf("InterBrokerListener = %q", got)
	}
	if b.ClientAuth(listeners[1]) != "required" || b.ClientAuth(listeners[2]) != "none" {
		t.Errorf("per-listener ssl.client.auth: SSL %q, INTERNAL %q", b.ClientAuth(listeners[1]), b.ClientAuth(listeners[2]))
	}
	// A broker-wide ssl.client.auth reaches SSL listeners, not SASL_SSL ones
	// (KIP-684), unless their own key says so.
	wide, _ := mustLoad(t, nil, Sources{Sets: []string{
		"listeners=SSL://:9093,SASL_SSL://:9094,OTHER://:9095", "listener.security.protocol.map=SSL:SSL,SASL_SSL:SASL_SSL,OTHER:SASL_SSL",
		"ssl.certificate.location=/c", "ssl.key.location=/k", "ssl.ca.location=/ca", "ssl.client.auth=required",
		"listener.name.other.ssl.client.auth=requested",
	}})
	wl, _ := wide.ClientListeners()
	if got := []string{wide.ClientAuth(wl[0]), wide.ClientAuth(wl[1]), wide.ClientAuth(wl[2])}; got[0] != "required" || got[1] != "none" || got[2] != "requested" {
		t.Errorf("ssl.client.auth by listener = %q, want required, none, requested", got)
	}

	for _, sets := range [][]string{
		{"listeners=SSL://:9093"}, // no certificate
		{"listeners=FOO://:9093"}, // no protocol for FOO
		{"listeners=SSL://:9093", "ssl.certificate.location=/c", "ssl.key.location=/k", "ssl.client.auth=required"}, // no CA
		{"listeners=PLAINTEXT://:9092", "inter.broker.listener.name=OTHER"},
		{"listeners=PLAINTEXT://:9092", "advertised.listeners=SSL://h:1"},
	} {
		if err := loadErr(t, nil, Sources{Sets: sets}); err == nil {
			t.Errorf("%q loaded", sets)
		}
	}
}
