package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sluicelog/sluice/internal/vfs"
)

// profileEnv names the profile to use when --profile is not given.
const profileEnv = "SLUICE_PROFILE"

// profilesFileName is the profiles file under the user's config directory
// ($XDG_CONFIG_HOME/sluice, else ~/.config/sluice on Linux).
const profilesFileName = "profiles.conf"

// maxSettingsFile bounds a profiles or --config-file file: a few lines of
// settings, never megabytes.
const maxSettingsFile = 1 << 20

// clientSettings is what a profile or a --config-file sets: the seed
// brokers, and how to secure the connection (librdkafka's names).
type clientSettings struct {
	Brokers                string `json:"brokers"`
	SecurityProtocol       string `json:"security_protocol,omitempty"`
	SASLMechanism          string `json:"sasl_mechanism,omitempty"`
	SASLUsername           string `json:"sasl_username,omitempty"`
	SASLPassword           string `json:"-"`
	SASLPasswordFile       string `json:"sasl_password_file,omitempty"`
	SSLCALocation          string `json:"ssl_ca_location,omitempty"`
	SSLCertificateLocation string `json:"ssl_certificate_location,omitempty"`
	SSLKeyLocation         string `json:"ssl_key_location,omitempty"`
}

// settingsKeys maps the keys a settings file may use to a setter. The
// names are librdkafka's (and the Java client's), so a kcat -F file works
// unchanged; a key sluice does not know is refused rather than ignored,
// since ignoring security.protocol would connect in plain text.
var settingsKeys = map[string]func(*clientSettings, string){
	"bootstrap.servers":        func(s *clientSettings, v string) { s.Brokers = v },
	"metadata.broker.list":     func(s *clientSettings, v string) { s.Brokers = v },
	"security.protocol":        func(s *clientSettings, v string) { s.SecurityProtocol = v },
	"sasl.mechanisms":          func(s *clientSettings, v string) { s.SASLMechanism = v },
	"sasl.mechanism":           func(s *clientSettings, v string) { s.SASLMechanism = v },
	"sasl.username":            func(s *clientSettings, v string) { s.SASLUsername = v },
	"sasl.password":            func(s *clientSettings, v string) { s.SASLPassword = v },
	"sasl.password.file":       func(s *clientSettings, v string) { s.SASLPasswordFile = v }, // Sluice's: keeps the password out of the file
	"ssl.ca.location":          func(s *clientSettings, v string) { s.SSLCALocation = v },
	"ssl.certificate.location": func(s *clientSettings, v string) { s.SSLCertificateLocation = v },
	"ssl.key.location":         func(s *clientSettings, v string) { s.SSLKeyLocation = v },
}

// settingsLines are a profile's settings as the file writes them, in a
// fixed order, empty ones left out.
func (s clientSettings) settingsLines() [][2]string {
	all := [][2]string{
		{"bootstrap.servers", s.Brokers}, {"security.protocol", s.SecurityProtocol},
		{"sasl.mechanisms", s.SASLMechanism}, {"sasl.username", s.SASLUsername},
		{"sasl.password", s.SASLPassword}, {"sasl.password.file", s.SASLPasswordFile},
		{"ssl.ca.location", s.SSLCALocation}, {"ssl.certificate.location", s.SSLCertificateLocation},
		{"ssl.key.location", s.SSLKeyLocation},
	}
	var out [][2]string
	for _, kv := range all {
		if kv[1] != "" {
			out = append(out, kv)
		}
	}
	return out
}

// namedProfile is one [NAME] section of the profiles file.
type namedProfile struct {
	Name string
	clientSettings
}

// profilesFile is the profiles file: which profile is current, and the
// profiles in the order the file lists them.
type profilesFile struct {
	path     string
	current  string
	profiles []namedProfile
}

// profilesPath is where the profiles file lives. os.UserConfigDir follows
// XDG on Linux and the platform's own place elsewhere (~/Library/Application
// Support on macOS), where users look for such files.
func profilesPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("profiles: %w", err)
	}
	return filepath.Join(dir, "sluice", profilesFileName), nil
}

// loadProfiles reads the profiles file; a missing file is an empty one.
func loadProfiles() (*profilesFile, error) {
	path, err := profilesPath()
	if err != nil {
		return nil, err
	}
	pf := &profilesFile{path: path}
	data, err := vfs.ReadFile(vfs.OS(), path, maxSettingsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return pf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	if err := pf.parse(string(data)); err != nil {
		return nil, err
	}
	return pf, nil
}

// parse reads the file's lines: `current = NAME` before the first
// section, then `[NAME]` sections of `key = value` settings. `#` starts a
// comment line.
func (pf *profilesFile) parse(text string) error {
	var in *namedProfile
	return eachSetting(pf.path, text, func(lineNo int, section, key, value string) error {
		if section != "" {
			if pf.lookup(section) != nil {
				return fmt.Errorf("%s:%d: profile %q defined twice", pf.path, lineNo, section)
			}
			// in points into the slice: safe because no later append
			// happens before the next section re-points it.
			pf.profiles = append(pf.profiles, namedProfile{Name: section})
			in = &pf.profiles[len(pf.profiles)-1]
			return nil
		}
		if in == nil {
			if key != "current" {
				return fmt.Errorf("%s:%d: %q before the first [profile] section; only current= goes there", pf.path, lineNo, key)
			}
			pf.current = value
			return nil
		}
		return setSetting(&in.clientSettings, pf.path, lineNo, key, value)
	})
}

// eachSetting calls f for each `[section]` header (key and value empty)
// and each `key = value` line of text, skipping blank and comment lines.
func eachSetting(path, text string, f func(lineNo int, section, key, value string) error) error {
	sc := bufio.NewScanner(strings.NewReader(text))
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			name, ok := strings.CutSuffix(line[1:], "]")
			if name = strings.TrimSpace(name); !ok || !validProfileName(name) {
				return fmt.Errorf("%s:%d: malformed section %q: want [NAME], NAME of letters, digits, '.', '_' or '-'", path, lineNo, line)
			}
			if err := f(lineNo, name, "", ""); err != nil {
				return err
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: %q: want key=value", path, lineNo, line)
		}
		if err := f(lineNo, "", strings.TrimSpace(key), strings.TrimSpace(value)); err != nil {
			return err
		}
	}
	return sc.Err()
}

// setSetting applies one key. An unknown key fails with the file and line:
// a misspelled setting silently ignored would connect with defaults the
// user did not choose.
func setSetting(s *clientSettings, path string, lineNo int, key, value string) error {
	set, ok := settingsKeys[key]
	if !ok {
		return fmt.Errorf("%s:%d: unknown setting %q (sluice reads bootstrap.servers, security.protocol, sasl.mechanisms, sasl.username, sasl.password[.file], ssl.ca.location, ssl.certificate.location, ssl.key.location)", path, lineNo, key)
	}
	set(s, value)
	return nil
}

// readConfigFile reads a --config-file: librdkafka-style key=value lines,
// as kcat -F takes them, with no sections.
func readConfigFile(path string) (clientSettings, error) {
	var s clientSettings
	data, err := vfs.ReadFile(vfs.OS(), path, maxSettingsFile)
	if err != nil {
		return s, fmt.Errorf("--config-file: %w", err)
	}
	err = eachSetting(path, string(data), func(lineNo int, section, key, value string) error {
		if section != "" {
			return fmt.Errorf("%s:%d: a --config-file has no [sections]; profiles go in %s", path, lineNo, profilesFileName)
		}
		return setSetting(&s, path, lineNo, key, value)
	})
	return s, err
}

func validProfileName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (pf *profilesFile) lookup(name string) *namedProfile {
	i := slices.IndexFunc(pf.profiles, func(p namedProfile) bool { return p.Name == name })
	if i < 0 {
		return nil
	}
	return &pf.profiles[i]
}

// get returns the named profile, or an error naming the file.
func (pf *profilesFile) get(name string) (*namedProfile, error) {
	if p := pf.lookup(name); p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("no profile %q in %s (sluice profile list shows them)", name, pf.path)
}

// names lists the profile names.
func (pf *profilesFile) names() []string {
	out := make([]string, 0, len(pf.profiles))
	for _, p := range pf.profiles {
		out = append(out, p.Name)
	}
	return out
}

// save writes the file back atomically, creating its directory.
func (pf *profilesFile) save() error {
	var b strings.Builder
	b.WriteString("# sluice client profiles: `sluice profile --help`\n")
	if pf.current != "" {
		fmt.Fprintf(&b, "current = %s\n", pf.current)
	}
	for _, p := range pf.profiles {
		fmt.Fprintf(&b, "\n[%s]\n", p.Name)
		for _, kv := range p.settingsLines() {
			fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
		}
	}
	// 0700: profiles may hold SASL credentials (sasl.password), so the
	// directory is private. The file is replaced atomically, so a crash
	// mid-save never leaves half a file.
	if err := vfs.OS().MkdirAll(filepath.Dir(pf.path), 0o700); err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	return vfs.WriteFileAtomic(vfs.OS(), pf.path, []byte(b.String()))
}

// selectedSettings returns the settings of the --config-file if given,
// else of the profile named by --profile, $SLUICE_PROFILE or the file's
// current one, else none; and where they came from, for messages.
func selectedSettings(profile, configFile string) (clientSettings, string, error) {
	switch {
	// Both at once would need a merge order nobody could guess; refusing
	// costs the user one flag.
	case profile != "" && configFile != "":
		return clientSettings{}, "", usageErrorf("--profile and --config-file both name client settings: give one")
	case configFile != "":
		s, err := readConfigFile(configFile)
		return s, configFile, err
	}
	pf, err := loadProfiles()
	if err != nil {
		return clientSettings{}, "", err
	}
	if profile == "" {
		profile = envProfile()
	}
	if profile == "" {
		profile = pf.current
	}
	if profile == "" {
		return clientSettings{}, "", nil
	}
	p, err := pf.get(profile)
	if err != nil {
		return clientSettings{}, "", err
	}
	return p.clientSettings, "profile " + profile, nil
}

// envProfile is $SLUICE_PROFILE.
func envProfile() string { return strings.TrimSpace(os.Getenv(profileEnv)) }

// slicesDeleteProfile removes the named profile.
func slicesDeleteProfile(profiles []namedProfile, name string) []namedProfile {
	return slices.DeleteFunc(profiles, func(p namedProfile) bool { return p.Name == name })
}
