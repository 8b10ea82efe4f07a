// Package logopts is the engine's half of the log drivers: it merges the
// daemon's defaults into a container's log configuration, validates drivers
// and options with Docker's messages, resolves them (tag template, label and
// env attributes, syslog address, file paths) into the logger.Config the
// monitor opens, and reads a container's log back for `docker logs`,
// whatever its driver. It may use text/template and regexp: only the engine
// links it, never the monitor.
package logopts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"

	"github.com/docker/go-units"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger"
	"github.com/skiff-dev/skiff/internal/logger/jsonfile"
	"github.com/skiff-dev/skiff/internal/logger/local"
)

// Common options of every driver (Docker's logger.Attr*).
const (
	optEnv         = "env"
	optEnvRegex    = "env-regex"
	optLabels      = "labels"
	optLabelsRegex = "labels-regex"
	optTag         = "tag"
)

var commonOpts = map[string]bool{optEnv: true, optEnvRegex: true, optLabels: true, optLabelsRegex: true, optTag: true}

// localOpts are the local driver's options (Docker's local.LogOptKeys);
// each also exists as cache-KEY for the dual-logging cache.
var localOpts = map[string]bool{"max-file": true, "max-size": true, "compress": true,
	optEnv: true, optEnvRegex: true, optLabels: true, optLabelsRegex: true, optTag: true}

// builtinOpts are accepted for every driver and not seen by its validator.
func builtinOpt(k string) bool {
	switch k {
	case "mode", "max-buffer-size", "cache-disabled":
		return true
	}
	if rest, ok := strings.CutPrefix(k, "cache-"); ok {
		return localOpts[rest]
	}
	return false
}

// Drivers are the log drivers skiff has, sorted.
var Drivers = []string{logger.Journald, logger.JSONFile, logger.Local, logger.None, logger.Syslog}

// ErrReadLogsNotSupported is Docker's error for `docker logs` of a container
// whose driver cannot be read (none, or a cache that is disabled).
var ErrReadLogsNotSupported = errdefs.NotImplemented("configured logging driver does not support reading")

// Merge fills a container's log configuration from the daemon's defaults
// as dockerd's mergeAndVerifyLogConfig does: no driver means the default
// driver; the default options apply when the driver is the default one;
// the cache options (cache-*) apply to every driver.
func Merge(driver string, opts map[string]string, defDriver string, defOpts map[string]string) (string, map[string]string) {
	if defDriver == "" {
		defDriver = logger.JSONFile
	}
	if driver == "" {
		driver = defDriver
	}
	out := make(map[string]string, len(opts))
	for k, v := range opts {
		out[k] = v
	}
	for k, v := range defOpts {
		if _, ok := out[k]; ok {
			continue
		}
		if driver == defDriver || (strings.HasPrefix(k, "cache-") && builtinOpt(k)) {
			out[k] = v
		}
	}
	return driver, out
}

// Validate checks a driver and its options with Docker's messages
// (ValidateLogOpts and each driver's validator), and, where Docker checks
// them only when the container starts, their values too (sizes, counts,
// booleans, templates, regular expressions), so that a create already
// fails. Errors are Invalid.
func Validate(driver string, opts map[string]string) error {
	if err := validate(driver, opts); err != nil {
		return errdefs.Wrap(errdefs.KindInvalid, err)
	}
	return nil
}

func validate(driver string, opts map[string]string) error {
	if driver == "" {
		driver = logger.JSONFile
	}
	if driver == logger.None {
		return nil
	}
	switch opts["mode"] {
	case "", "blocking", "non-blocking":
	default:
		return fmt.Errorf("logger: logging mode not supported: %s", opts["mode"])
	}
	if s, ok := opts["max-buffer-size"]; ok {
		if opts["mode"] != "non-blocking" {
			return errors.New("logger: max-buffer-size option is only supported with 'mode=non-blocking'")
		}
		if _, err := units.RAMInBytes(s); err != nil {
			return fmt.Errorf("error parsing option max-buffer-size: %w", err)
		}
	}
	if v := opts["cache-disabled"]; v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("invalid value for option cache-disabled: %s", v)
		}
	}
	if !slices.Contains(Drivers, driver) {
		return fmt.Errorf("logger: no log driver named '%s' is registered", driver)
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		if !builtinOpt(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // Docker reports whichever its map gives first
	for _, k := range keys {
		if commonOpts[k] {
			continue
		}
		ok := false
		switch driver {
		case logger.JSONFile:
			ok = k == "max-file" || k == "max-size" || k == "compress"
		case logger.Local:
			ok = localOpts[k]
		case logger.Syslog:
			ok = slices.Contains([]string{"syslog-address", "syslog-facility", "syslog-tls-ca-cert",
				"syslog-tls-cert", "syslog-tls-key", "syslog-tls-skip-verify", "syslog-format"}, k)
		}
		if !ok {
			if driver == logger.Local {
				return fmt.Errorf("unknown log opt '%s' for log driver %s", k, driver)
			}
			return fmt.Errorf("unknown log opt '%s' for %s log driver", k, driver)
		}
	}
	if driver == logger.Syslog {
		network, _, err := parseAddress(opts["syslog-address"])
		if err != nil {
			return err
		}
		// Docker's TLS transport is not built in: crypto/tls would cost
		// every container's monitor about 270 KiB (measured), for a
		// transport a local relay can provide. Refused, never ignored.
		if network == "tcp+tls" {
			return errors.New("syslog-address tcp+tls is not supported by skiff: use udp, tcp, unix or unixgram")
		}
		for _, k := range []string{"syslog-tls-ca-cert", "syslog-tls-cert", "syslog-tls-key", "syslog-tls-skip-verify"} {
			if _, ok := opts[k]; ok {
				return fmt.Errorf("log opt '%s' is not supported by skiff: syslog over tcp+tls is not", k)
			}
		}
		if _, err := parseFacility(opts["syslog-facility"]); err != nil {
			return err
		}
		if err := parseFormat(opts["syslog-format"]); err != nil {
			return err
		}
	}
	// What Docker checks when the driver starts.
	switch driver {
	case logger.JSONFile:
		if _, err := jsonFileConfig(opts, ""); err != nil {
			return err
		}
	case logger.Local:
		if _, err := localConfig(opts, "", ""); err != nil {
			return err
		}
	case logger.Syslog, logger.Journald:
		if _, err := localConfig(opts, "cache-", ""); err != nil {
			return err
		}
	}
	if _, err := parseTagTemplate(opts[optTag]); err != nil {
		return err
	}
	for _, k := range []string{optLabelsRegex, optEnvRegex} {
		if v := opts[k]; v != "" {
			if _, err := regexp.Compile(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFileConfig is json-file's New: max-size (decimal units, as Docker's
// FromHumanSize), max-file, compress.
func jsonFileConfig(opts map[string]string, path string) (*logger.FileConfig, error) {
	fc := &logger.FileConfig{Path: path, MaxFiles: 1}
	if v, ok := opts["max-size"]; ok {
		n, err := units.FromHumanSize(v)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return nil, errors.New("max-size must be a positive number")
		}
		fc.MaxSize = n
	}
	if v, ok := opts["max-file"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, err
		}
		if n < 1 {
			return nil, errors.New("max-file cannot be less than 1")
		}
		fc.MaxFiles = n
	}
	if v, ok := opts["compress"]; ok {
		c, err := strconv.ParseBool(v)
		if err != nil {
			return nil, err
		}
		if c && (fc.MaxFiles == 1 || fc.MaxSize == 0) {
			return nil, errors.New("compress cannot be true when max-file is less than 2 or max-size is not set")
		}
		fc.Compress = c
	}
	return fc, nil
}

// localConfig is the local driver's newConfig, reading PREFIX+max-size etc.
// (prefix "cache-" for the dual-logging cache: Docker documents these keys).
func localConfig(opts map[string]string, prefix, path string) (*logger.FileConfig, error) {
	fc := &logger.FileConfig{Path: path, MaxSize: local.DefaultMaxSize, MaxFiles: local.DefaultMaxFiles, Compress: local.DefaultCompress}
	if v, ok := opts[prefix+"max-size"]; ok {
		n, err := units.FromHumanSize(v)
		if err != nil {
			return nil, fmt.Errorf("invalid value for %smax-size: %s: %w", prefix, v, err)
		}
		fc.MaxSize = n
	}
	if v, ok := opts[prefix+"max-file"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("invalid value for %smax-file: %s: %w", prefix, v, err)
		}
		fc.MaxFiles = n
	}
	if v, ok := opts[prefix+"compress"]; ok {
		c, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("invalid boolean value for %scompress: %w", prefix, err)
		}
		fc.Compress = c
	}
	if fc.MaxSize < 0 {
		return nil, errors.New("max-size must not be negative")
	}
	if fc.MaxFiles < 0 {
		return nil, errors.New("max-file must not be negative")
	}
	if fc.Compress && fc.MaxFiles <= 1 {
		return nil, errors.New("compression cannot be enabled when max file count is 1")
	}
	if fc.MaxFiles == 0 {
		fc.MaxFiles = 1
	}
	return fc, nil
}

const defaultSyslogPort = "514"

// parseAddress is Docker's: unix and unixgram sockets must exist; udp, tcp
// and tcp+tls get port 514 when none is given.
func parseAddress(address string) (network, addr string, err error) {
	if address == "" {
		return "", "", nil
	}
	u, err := url.Parse(address)
	if err != nil {
		return "", "", err
	}
	if u.Scheme == "unix" || u.Scheme == "unixgram" {
		if _, err := os.Stat(u.Path); err != nil {
			return "", "", err
		}
		return u.Scheme, u.Path, nil
	}
	if u.Scheme != "udp" && u.Scheme != "tcp" && u.Scheme != "tcp+tls" {
		return "", "", fmt.Errorf("unsupported scheme: '%s'", u.Scheme)
	}
	host := u.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		if !strings.Contains(err.Error(), "missing port in address") {
			return "", "", err
		}
		host = net.JoinHostPort(host, defaultSyslogPort)
	}
	return u.Scheme, host, nil
}

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// parseFacility returns the facility shifted into a priority (daemon by
// default), from a name or a number 0-23.
func parseFacility(f string) (int, error) {
	if f == "" {
		return 3 << 3, nil
	}
	if n, ok := facilities[f]; ok {
		return n << 3, nil
	}
	if n, err := strconv.Atoi(f); err == nil && 0 <= n && n <= 23 {
		return n << 3, nil
	}
	return 0, errors.New("invalid syslog facility")
}

func parseFormat(f string) error {
	switch f {
	case "", "rfc3164", "rfc5424", "rfc5424micro":
		return nil
	}
	return errors.New("Invalid syslog format")
}

// Info is what a tag template and the attributes see of a container: the
// fields and methods of Docker's logger.Info.
type Info struct {
	Config              map[string]string
	ContainerID         string
	ContainerName       string
	ContainerEntrypoint string
	ContainerArgs       []string
	ContainerImageID    string
	ContainerImageName  string
	ContainerCreated    time.Time
	ContainerEnv        []string
	ContainerLabels     map[string]string
	LogPath             string
	DaemonName          string
}

func truncID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// ID is the short container ID.
func (i *Info) ID() string { return truncID(i.ContainerID) }

// FullID is the container ID.
func (i *Info) FullID() string { return i.ContainerID }

// Name is the container name without its slash.
func (i *Info) Name() string { return strings.TrimPrefix(i.ContainerName, "/") }

// ImageID is the short image ID.
func (i *Info) ImageID() string { return truncID(i.ContainerImageID) }

// ImageFullID is the image ID.
func (i *Info) ImageFullID() string { return i.ContainerImageID }

// ImageName is the image as the container was created with it.
func (i *Info) ImageName() string { return i.ContainerImageName }

// Command is the entrypoint and arguments joined by spaces.
func (i *Info) Command() string {
	return strings.Join(append([]string{i.ContainerEntrypoint}, i.ContainerArgs...), " ")
}

// Hostname is the host's name.
func (i *Info) Hostname() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("logger: can not resolve hostname: %v", err)
	}
	return h, nil
}

// templateFuncs are Docker's templates.basicFunctions.
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		buf := &bytes.Buffer{}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": func(s string) string {
		prev := ' '
		return strings.Map(func(r rune) rune {
			defer func() { prev = r }()
			if unicode.IsSpace(prev) || unicode.IsPunct(prev) {
				return unicode.ToTitle(r)
			}
			return r
		}, s)
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, prefix, suffix int) string {
		if s == "" {
			return s
		}
		return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
	},
	"truncate": func(s string, n int) string {
		if len(s) < n {
			return s
		}
		return s[:n]
	},
}

func parseTagTemplate(s string) (*template.Template, error) {
	return template.New("log-tag").Funcs(templateFuncs).Parse(s)
}

// Tag is Docker's ParseLogTag: the tag option as a template over Info, or
// def when the option is empty.
func (i *Info) Tag(def string) (string, error) {
	tmpl := i.Config[optTag]
	if tmpl == "" {
		tmpl = def
	}
	switch tmpl {
	case "":
		return "", nil
	case "{{.ID}}":
		return i.ID(), nil
	case "{{.FullID}}":
		return i.FullID(), nil
	case "{{.Name}}":
		return i.Name(), nil
	}
	t, err := parseTagTemplate(tmpl)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, i); err != nil {
		return "", err
	}
	return b.String(), nil
}

// ExtraAttributes is Docker's: the labels and env variables the options
// select, keys passed through keyMod when given.
func (i *Info) ExtraAttributes(keyMod func(string) string) (map[string]string, error) {
	extra := map[string]string{}
	mod := func(k string) string {
		if keyMod != nil {
			return keyMod(k)
		}
		return k
	}
	if v := i.Config[optLabels]; v != "" {
		for _, l := range strings.Split(v, ",") {
			if val, ok := i.ContainerLabels[l]; ok {
				extra[mod(l)] = val
			}
		}
	}
	if v := i.Config[optLabelsRegex]; v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, err
		}
		for k, val := range i.ContainerLabels {
			if re.MatchString(k) {
				extra[mod(k)] = val
			}
		}
	}
	env := map[string]string{}
	for _, e := range i.ContainerEnv {
		if k, v, ok := strings.Cut(e, "="); ok {
			env[k] = v
		}
	}
	if len(env) == 0 {
		return extra, nil
	}
	if v := i.Config[optEnv]; v != "" {
		for _, l := range strings.Split(v, ",") {
			if val, ok := env[l]; ok {
				extra[mod(l)] = val
			}
		}
	}
	if v := i.Config[optEnvRegex]; v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, err
		}
		for k, val := range env {
			if re.MatchString(k) {
				extra[mod(k)] = val
			}
		}
	}
	return extra, nil
}

func sorted(m map[string]string) []logger.Attr {
	as := make([]logger.Attr, 0, len(m))
	for k, v := range m {
		as = append(as, logger.Attr{Key: k, Value: v})
	}
	slices.SortFunc(as, func(a, b logger.Attr) int { return strings.Compare(a.Key, b.Key) })
	return as
}

// Files of a container's log, in its directory (Docker's names).
func jsonPath(dir, id string) string { return filepath.Join(dir, id+"-json.log") }
func localPath(dir string) string    { return filepath.Join(dir, "local-logs", "container.log") }
func cachePath(dir string) string    { return filepath.Join(dir, "container-cached.log") }

// JSONFilePath is where a json-file log lives (the container's LogPath).
func JSONFilePath(dir, id string) string { return jsonPath(dir, id) }

// useCache reports whether a driver that cannot be read keeps a local cache.
func useCache(driver string, opts map[string]string) bool {
	if driver != logger.Syslog && driver != logger.Journald {
		return false
	}
	v := opts["cache-disabled"]
	if v == "" {
		return true
	}
	b, err := strconv.ParseBool(v)
	return err == nil && !b
}

// Resolve turns a container's driver and options into the configuration
// its monitor opens; dir is the container's directory (its log files go
// there, with Docker's names). Errors are what Docker's driver
// constructors return when the container starts.
func Resolve(info *Info, driver string, dir string) (*logger.Config, error) {
	opts := info.Config
	if driver == "" {
		driver = logger.JSONFile
	}
	cfg := &logger.Config{Driver: driver}
	if driver == logger.None {
		return cfg, nil
	}
	if opts["mode"] == "non-blocking" {
		cfg.NonBlocking = true
		cfg.MaxBufferSize = logger.DefaultMaxBufferSize
		if s, ok := opts["max-buffer-size"]; ok {
			n, err := units.RAMInBytes(s)
			if err != nil {
				return nil, err
			}
			cfg.MaxBufferSize = n
		}
	}
	var err error
	switch driver {
	case logger.JSONFile, logger.Local:
		extra, err := info.ExtraAttributes(nil)
		if err != nil {
			return nil, err
		}
		if opts[optTag] != "" {
			// No default template: a tag only when the user asked for one.
			tag, err := info.Tag("")
			if err != nil {
				return nil, err
			}
			if tag != "" {
				extra[optTag] = tag
			}
		}
		cfg.Attrs = sorted(extra)
		if driver == logger.JSONFile {
			cfg.File, err = jsonFileConfig(opts, jsonPath(dir, info.ContainerID))
		} else {
			cfg.File, err = localConfig(opts, "", localPath(dir))
		}
		if err != nil {
			return nil, err
		}
	case logger.Syslog:
		tag, err := info.Tag("{{.ID}}")
		if err != nil {
			return nil, err
		}
		sc := &logger.SyslogConfig{Tag: tag, Format: opts["syslog-format"]}
		if sc.Network, sc.Address, err = parseAddress(opts["syslog-address"]); err != nil {
			return nil, err
		}
		if sc.Facility, err = parseFacility(opts["syslog-facility"]); err != nil {
			return nil, err
		}
		if err := parseFormat(sc.Format); err != nil {
			return nil, err
		}
		cfg.Syslog = sc
	case logger.Journald:
		tag, err := info.Tag("{{.ID}}")
		if err != nil {
			return nil, err
		}
		fields := []logger.Attr{
			{Key: "CONTAINER_ID", Value: truncID(info.ContainerID)},
			{Key: "CONTAINER_ID_FULL", Value: info.ContainerID},
			{Key: "CONTAINER_NAME", Value: info.Name()},
			{Key: "CONTAINER_TAG", Value: tag},
			{Key: "IMAGE_NAME", Value: info.ImageName()},
			{Key: "SYSLOG_IDENTIFIER", Value: tag},
		}
		extra, err := info.ExtraAttributes(journalKey)
		if err != nil {
			return nil, err
		}
		// Docker copies the attributes over its own fields in one map.
		for _, a := range sorted(extra) {
			if i := slices.IndexFunc(fields, func(f logger.Attr) bool { return f.Key == a.Key }); i >= 0 {
				fields[i].Value = a.Value
			} else {
				fields = append(fields, a)
			}
		}
		cfg.Journald = &logger.JournaldConfig{Fields: fields}
	default:
		return nil, fmt.Errorf("logger: no log driver named '%s' is registered", driver)
	}
	if useCache(driver, opts) {
		if cfg.Cache, err = localConfig(opts, "cache-", cachePath(dir)); err != nil {
			return nil, fmt.Errorf("error setting up local container log cache: %w", err)
		}
		// The cache is a local log of the same container: Docker gives it
		// the attributes (labels, env, tag) the local driver would.
		extra, err := info.ExtraAttributes(nil)
		if err != nil {
			return nil, err
		}
		if opts[optTag] != "" {
			if tag, err := info.Tag(""); err == nil && tag != "" {
				extra[optTag] = tag
			}
		}
		cfg.Attrs = sorted(extra)
	}
	return cfg, nil
}

// journalKey is Docker's sanitizeKeyMod: journal field names are upper
// case letters, digits and underscores, not starting with an underscore.
func journalKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		if 'a' <= r && r <= 'z' {
			r = unicode.ToUpper(r)
		} else if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			r = '_'
		}
		if b.Len() == 0 && r == '_' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Read delivers a container's log records for `docker logs`: the json-file
// or local file, or the local cache of a driver that cannot be read back.
func Read(ctx context.Context, driver string, opts map[string]string, dir, id string, ro logger.ReadOptions, fn func(logger.Entry) error) error {
	switch {
	case driver == "" || driver == logger.JSONFile:
		return jsonfile.Read(ctx, jsonPath(dir, id), ro, fn)
	case driver == logger.Local:
		return local.Read(ctx, localPath(dir), ro, fn)
	case useCache(driver, opts):
		return local.Read(ctx, cachePath(dir), ro, fn)
	}
	return ErrReadLogsNotSupported
}

// Readable reports whether Read can read the container's log.
func Readable(driver string, opts map[string]string) bool {
	return driver == "" || driver == logger.JSONFile || driver == logger.Local || useCache(driver, opts)
}
