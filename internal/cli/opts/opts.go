// Package opts holds the flag value types and validators of the skiff
// command line. They follow docker/cli's `opts` package (Apache-2.0) so that
// flags parse, validate and fail with the same messages as docker's.
package opts

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// ValidatorFunc validates (and may normalize) one flag value.
type ValidatorFunc func(val string) (string, error)

// ListOpts is a repeatable flag that collects its values in order.
type ListOpts struct {
	values    *[]string
	validator ValidatorFunc
}

// NewListOpts returns an empty ListOpts that checks each value with validator
// (nil: no check).
func NewListOpts(validator ValidatorFunc) ListOpts {
	var values []string
	return ListOpts{values: &values, validator: validator}
}

func (o *ListOpts) String() string {
	if o.values == nil || len(*o.values) == 0 {
		return ""
	}
	return fmt.Sprintf("%v", *o.values)
}

// Set validates value and appends it.
func (o *ListOpts) Set(value string) error {
	if o.validator != nil {
		v, err := o.validator(value)
		if err != nil {
			return err
		}
		value = v
	}
	*o.values = append(*o.values, value)
	return nil
}

// GetMap returns the values as a set.
func (o *ListOpts) GetMap() map[string]struct{} {
	ret := make(map[string]struct{}, len(*o.values))
	for _, k := range *o.values {
		ret[k] = struct{}{}
	}
	return ret
}

// GetSlice returns the values in the order given.
func (o *ListOpts) GetSlice() []string { return *o.values }

// GetAllOrEmpty returns the values, or an empty (non-nil) slice.
func (o *ListOpts) GetAllOrEmpty() []string {
	if *o.values == nil {
		return []string{}
	}
	return *o.values
}

// Get reports whether key is one of the values.
func (o *ListOpts) Get(key string) bool { return slices.Contains(*o.values, key) }

// Len is the number of values.
func (o *ListOpts) Len() int { return len(*o.values) }

// Type is the type name shown in help.
func (o *ListOpts) Type() string { return "list" }

// MapOpts is a repeatable key=value flag.
type MapOpts struct {
	values    map[string]string
	validator ValidatorFunc
}

// NewMapOpts returns an empty MapOpts.
func NewMapOpts(validator ValidatorFunc) *MapOpts {
	return &MapOpts{values: map[string]string{}, validator: validator}
}

// Set validates value and stores it, split on the first '='.
func (o *MapOpts) Set(value string) error {
	if o.validator != nil {
		v, err := o.validator(value)
		if err != nil {
			return err
		}
		value = v
	}
	k, v, _ := strings.Cut(value, "=")
	o.values[k] = v
	return nil
}

// GetAll returns the map.
func (o *MapOpts) GetAll() map[string]string { return o.values }
func (o *MapOpts) String() string            { return fmt.Sprintf("%v", o.values) }
func (o *MapOpts) Type() string              { return "map" }

// FilterOpt is the repeatable --filter name=value flag.
type FilterOpt struct {
	filter client.Filters
}

// NewFilterOpt returns an empty FilterOpt.
func NewFilterOpt() FilterOpt { return FilterOpt{filter: make(client.Filters)} }

func (o *FilterOpt) String() string {
	if o == nil || len(o.filter) == 0 {
		return ""
	}
	b, err := json.Marshal(o.filter)
	if err != nil {
		return "invalid filters"
	}
	return string(b)
}

// Set adds one name=value term.
func (o *FilterOpt) Set(value string) error {
	if value == "" {
		return nil
	}
	name, val, ok := strings.Cut(value, "=")
	if !ok {
		return errors.New("bad format of filter (expected name=value)")
	}
	// docker lowercases the name and trims both sides; keep that.
	o.filter.Add(strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(val))
	return nil
}

func (o *FilterOpt) Type() string { return "filter" }

// Value returns the filters.
func (o *FilterOpt) Value() client.Filters { return o.filter }

// NanoCPUs is a decimal number of CPUs stored as billionths.
type NanoCPUs int64

func (c *NanoCPUs) String() string {
	if *c == 0 {
		return ""
	}
	return big.NewRat(int64(*c), 1e9).FloatString(3)
}

// Set parses a rational number such as 1.5.
func (c *NanoCPUs) Set(value string) error {
	cpus, err := ParseCPUs(value)
	*c = NanoCPUs(cpus)
	return err
}

func (c *NanoCPUs) Type() string { return "decimal" }
func (c *NanoCPUs) Value() int64 { return int64(*c) }

// ParseCPUs turns "1.5" into 1500000000 nano CPUs.
func ParseCPUs(value string) (int64, error) {
	cpu, ok := new(big.Rat).SetString(value)
	if !ok {
		return 0, fmt.Errorf("failed to parse %v as a rational number", value)
	}
	nano := cpu.Mul(cpu, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, errors.New("value is too precise")
	}
	return nano.Num().Int64(), nil
}

// MemBytes is a size such as 512m or 1g (binary units, like docker).
type MemBytes int64

func (m *MemBytes) String() string {
	// pflag treats "0" as the zero value and hides it in help.
	if *m != 0 {
		return units.BytesSize(float64(*m))
	}
	return "0"
}

// Set parses a size with go-units RAMInBytes.
func (m *MemBytes) Set(value string) error {
	val, err := units.RAMInBytes(value)
	*m = MemBytes(val)
	return err
}

func (m *MemBytes) Type() string { return "bytes" }
func (m *MemBytes) Value() int64 { return int64(*m) }

// MemSwapBytes is like MemBytes but accepts -1 (unlimited swap).
type MemSwapBytes int64

// Set parses a size, or -1.
func (m *MemSwapBytes) Set(value string) error {
	if value == "-1" {
		*m = -1
		return nil
	}
	val, err := units.RAMInBytes(value)
	*m = MemSwapBytes(val)
	return err
}

func (m *MemSwapBytes) Type() string { return "bytes" }
func (m *MemSwapBytes) Value() int64 { return int64(*m) }
func (m *MemSwapBytes) String() string {
	b := MemBytes(*m)
	return b.String()
}

// UlimitOpt is the repeatable --ulimit name=soft[:hard] flag.
type UlimitOpt struct {
	values map[string]*container.Ulimit
}

// NewUlimitOpt returns an empty UlimitOpt.
func NewUlimitOpt() *UlimitOpt { return &UlimitOpt{values: map[string]*container.Ulimit{}} }

// Set parses one ulimit; a later value for the same name wins.
func (o *UlimitOpt) Set(val string) error {
	l, err := units.ParseUlimit(val)
	if err != nil {
		return err
	}
	o.values[l.Name] = &container.Ulimit{Name: l.Name, Soft: l.Soft, Hard: l.Hard}
	return nil
}

func (o *UlimitOpt) String() string {
	out := make([]string, 0, len(o.values))
	for _, v := range o.values {
		out = append(out, (&units.Ulimit{Name: v.Name, Soft: v.Soft, Hard: v.Hard}).String())
	}
	sort.Strings(out)
	return fmt.Sprintf("%v", out)
}

// GetList returns the ulimits sorted by name.
func (o *UlimitOpt) GetList() []*container.Ulimit {
	out := make([]*container.Ulimit, 0, len(o.values))
	for _, v := range o.values {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (o *UlimitOpt) Type() string { return "ulimit" }

// ValidateEnv checks an -e value; a bare KEY takes its value from the CLI's
// environment when set there.
func ValidateEnv(val string) (string, error) {
	k, _, hasValue := strings.Cut(val, "=")
	if k == "" {
		return "", errors.New("invalid environment variable: " + val)
	}
	if hasValue {
		return val, nil
	}
	if envVal, ok := lookupEnv(k); ok {
		return k + "=" + envVal, nil
	}
	return val, nil
}

const whiteSpaces = " \t"

// ValidateLabel checks a key[=value] label.
func ValidateLabel(value string) (string, error) {
	key, _, _ := strings.Cut(value, "=")
	key = strings.TrimLeft(key, whiteSpaces)
	if key == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", value)
	}
	if strings.ContainsAny(key, whiteSpaces) {
		return "", fmt.Errorf("label '%s' contains whitespaces", key)
	}
	return value, nil
}

// ValidateIPAddress checks and normalizes an IP address.
func ValidateIPAddress(val string) (string, error) {
	if ip := net.ParseIP(strings.TrimSpace(val)); ip != nil {
		return ip.String(), nil
	}
	return "", fmt.Errorf("IP address is not correctly formatted: %s", val)
}

var (
	alphaRegexp  = regexp.MustCompile(`[a-zA-Z]`)
	domainRegexp = regexp.MustCompile(`^(:?(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))(:?\.(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)\.?\s*$`)
)

// ValidateDNSSearch checks a --dns-search domain ("." means none).
func ValidateDNSSearch(val string) (string, error) {
	if val = strings.Trim(val, " "); val == "." {
		return val, nil
	}
	if alphaRegexp.FindString(val) == "" {
		return "", fmt.Errorf("%s is not a valid domain", val)
	}
	ns := domainRegexp.FindSubmatch([]byte(val))
	if len(ns) > 0 && len(ns[1]) < 255 {
		return string(ns[1]), nil
	}
	return "", fmt.Errorf("%s is not a valid domain", val)
}

// ValidateExtraHost checks an --add-host host:ip (or host=ip) value.
func ValidateExtraHost(val string) (string, error) {
	k, v, ok := strings.Cut(val, "=")
	if !ok {
		k, v, ok = strings.Cut(val, ":")
	}
	if !ok || k == "" || strings.Contains(k, ":") {
		return "", fmt.Errorf("bad format for add-host: %q", val)
	}
	if v != "host-gateway" {
		if len(v) > 2 && v[0] == '[' && v[len(v)-1] == ']' {
			v = v[1 : len(v)-1]
		}
		if _, err := ValidateIPAddress(v); err != nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", v)
		}
	}
	return k + ":" + v, nil
}

// ValidateSysctl accepts the namespaced sysctls docker accepts.
func ValidateSysctl(val string) (string, error) {
	valid := map[string]bool{
		"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
		"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
	}
	k, _, ok := strings.Cut(val, "=")
	if !ok || k == "" {
		return "", fmt.Errorf("sysctl '%s' is not allowed", val)
	}
	if valid[k] || strings.HasPrefix(k, "net.") || strings.HasPrefix(k, "fs.mqueue.") {
		return val, nil
	}
	return "", fmt.Errorf("sysctl '%s' is not allowed", val)
}

// ParseLink parses name[:alias].
func ParseLink(val string) (string, string, error) {
	if val == "" {
		return "", "", errors.New("empty string specified for links")
	}
	arr := strings.SplitN(val, ":", 3)
	if len(arr) > 2 {
		return "", "", errors.New("bad format for links: " + val)
	}
	if len(arr) == 1 {
		return val, val, nil
	}
	if strings.HasPrefix(arr[0], "/") {
		_, alias := path.Split(arr[1])
		return arr[0][1:], alias, nil
	}
	return arr[0], arr[1], nil
}

// ValidateLink checks a --link value.
func ValidateLink(val string) (string, error) {
	_, _, err := ParseLink(val)
	return val, err
}
