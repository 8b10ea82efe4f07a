package opts

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/docker/go-units"
	mounttypes "github.com/moby/moby/api/types/mount"
)

// MountOpt is the repeatable --mount type=...,source=...,target=... flag.
type MountOpt struct {
	values []mounttypes.Mount
}

// Set parses one CSV mount description.
func (m *MountOpt) Set(value string) error {
	value = strings.TrimSpace(value)
	if value == "" {
		return errors.New("value is empty")
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	mount := mounttypes.Mount{Type: mounttypes.TypeVolume}
	for _, field := range fields {
		key, val, hasValue := strings.Cut(field, "=")
		if k := strings.TrimSpace(key); k != key {
			return fmt.Errorf("invalid option '%s' in '%s': option should not have whitespace", k, field)
		}
		if hasValue {
			v := strings.TrimSpace(val)
			if v == "" {
				return fmt.Errorf("invalid value for '%s': value is empty", key)
			}
			if v != val {
				return fmt.Errorf("invalid value for '%s' in '%s': value should not have whitespace", key, field)
			}
		}
		key = strings.ToLower(key)
		if !hasValue {
			switch key {
			case "readonly", "ro", "volume-nocopy", "bind-nonrecursive", "bind-create-src":
			default:
				return fmt.Errorf("invalid field '%s' must be a key=value pair", field)
			}
		}
		switch key {
		case "type":
			mount.Type = mounttypes.Type(strings.ToLower(val))
		case "source", "src":
			mount.Source = val
			if !filepath.IsAbs(val) && strings.HasPrefix(val, ".") {
				if abs, err := filepath.Abs(val); err == nil {
					mount.Source = abs
				}
			}
		case "target", "dst", "destination":
			mount.Target = val
		case "readonly", "ro":
			if mount.ReadOnly, err = parseBoolValue(key, val, hasValue); err != nil {
				return err
			}
		case "consistency":
			mount.Consistency = mounttypes.Consistency(strings.ToLower(val))
		case "bind-propagation":
			ensureBind(&mount).Propagation = mounttypes.Propagation(strings.ToLower(val))
		case "bind-nonrecursive":
			return errors.New("bind-nonrecursive is deprecated, use bind-recursive=disabled instead")
		case "bind-recursive":
			switch val {
			case "enabled":
			case "disabled":
				ensureBind(&mount).NonRecursive = true
			case "writable":
				ensureBind(&mount).ReadOnlyNonRecursive = true
			case "readonly":
				ensureBind(&mount).ReadOnlyForceRecursive = true
			default:
				return fmt.Errorf(`invalid value for %s: %s (must be "enabled", "disabled", "writable", or "readonly")`, key, val)
			}
		case "bind-create-src":
			if ensureBind(&mount).CreateMountpoint, err = parseBoolValue(key, val, hasValue); err != nil {
				return err
			}
		case "volume-subpath":
			ensureVolume(&mount).Subpath = val
		case "volume-nocopy":
			if ensureVolume(&mount).NoCopy, err = parseBoolValue(key, val, hasValue); err != nil {
				return err
			}
		case "volume-label":
			v := ensureVolume(&mount)
			v.Labels = setValueOnMap(v.Labels, val)
		case "volume-driver":
			ensureVolumeDriver(&mount).Name = val
		case "volume-opt":
			d := ensureVolumeDriver(&mount)
			d.Options = setValueOnMap(d.Options, val)
		case "image-subpath":
			if mount.ImageOptions == nil {
				mount.ImageOptions = &mounttypes.ImageOptions{}
			}
			mount.ImageOptions.Subpath = val
		case "tmpfs-size":
			size, err := units.RAMInBytes(val)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			ensureTmpfs(&mount).SizeBytes = size
		case "tmpfs-mode":
			mode, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			ensureTmpfs(&mount).Mode = os.FileMode(mode)
		default:
			return fmt.Errorf("unknown option '%s' in '%s'", key, field)
		}
	}
	if err := validateMount(&mount); err != nil {
		return err
	}
	m.values = append(m.values, mount)
	return nil
}

func (m *MountOpt) Type() string { return "mount" }

func (m *MountOpt) String() string {
	out := make([]string, 0, len(m.values))
	for _, mt := range m.values {
		out = append(out, fmt.Sprintf("%s %s %s", mt.Type, mt.Source, mt.Target))
	}
	return strings.Join(out, ", ")
}

// Value returns the mounts in order.
func (m *MountOpt) Value() []mounttypes.Mount { return m.values }

func validateMount(m *mounttypes.Mount) error {
	switch {
	case m.Type == "":
		return errors.New("type is required")
	case m.Type != mounttypes.TypeBind && m.BindOptions != nil:
		return fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", m.Type)
	case m.Type != mounttypes.TypeVolume && m.VolumeOptions != nil:
		return fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", m.Type)
	case m.Type != mounttypes.TypeImage && m.ImageOptions != nil:
		return fmt.Errorf("cannot mix 'image-*' options with mount type '%s'", m.Type)
	case m.Type != mounttypes.TypeTmpfs && m.TmpfsOptions != nil:
		return fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
	}
	if b := m.BindOptions; b != nil {
		if b.ReadOnlyNonRecursive && !m.ReadOnly {
			return errors.New("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
		}
		if b.ReadOnlyForceRecursive {
			if !m.ReadOnly {
				return errors.New("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction")
			}
			if b.Propagation != mounttypes.PropagationRPrivate {
				return errors.New("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction")
			}
		}
	}
	return nil
}

func parseBoolValue(key, val string, hasValue bool) (bool, error) {
	if !hasValue {
		return true, nil
	}
	switch val {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf(`invalid value for '%s': invalid boolean value (%q): must be one of "true", "1", "false", or "0" (default "true")`, key, val)
}

func ensureBind(m *mounttypes.Mount) *mounttypes.BindOptions {
	if m.BindOptions == nil {
		m.BindOptions = &mounttypes.BindOptions{}
	}
	return m.BindOptions
}

func ensureVolume(m *mounttypes.Mount) *mounttypes.VolumeOptions {
	if m.VolumeOptions == nil {
		m.VolumeOptions = &mounttypes.VolumeOptions{}
	}
	return m.VolumeOptions
}

func ensureVolumeDriver(m *mounttypes.Mount) *mounttypes.Driver {
	v := ensureVolume(m)
	if v.DriverConfig == nil {
		v.DriverConfig = &mounttypes.Driver{}
	}
	return v.DriverConfig
}

func ensureTmpfs(m *mounttypes.Mount) *mounttypes.TmpfsOptions {
	if m.TmpfsOptions == nil {
		m.TmpfsOptions = &mounttypes.TmpfsOptions{}
	}
	return m.TmpfsOptions
}

func setValueOnMap(target map[string]string, kv string) map[string]string {
	k, v, _ := strings.Cut(kv, "=")
	if k == "" {
		return target
	}
	if target == nil {
		target = map[string]string{}
	}
	target[k] = v
	return target
}

// VolumeSpec is a parsed -v value: [source:]target[:options].
type VolumeSpec struct {
	Type     mounttypes.Type
	Source   string
	Target   string
	ReadOnly bool
}

// ParseVolumeSpec parses a -v value the way docker does, deciding between a
// bind mount (source is a path) and a named or anonymous volume.
func ParseVolumeSpec(spec string) (VolumeSpec, error) {
	var v VolumeSpec
	switch len(spec) {
	case 0:
		return v, errors.New("invalid empty volume spec")
	case 1, 2:
		v.Target = spec
		v.Type = mounttypes.TypeVolume
		return v, nil
	}
	const end = rune(0)
	buf := make([]rune, 0, len(spec))
	for _, ch := range spec + string(end) {
		switch {
		case ch == ':' && len(buf) == 1 && unicode.IsLetter(buf[0]): // a Windows drive
			buf = append(buf, ch)
		case ch == ':' || ch == end:
			if err := v.fill(ch, string(buf)); err != nil {
				v.setType()
				return v, fmt.Errorf("invalid spec: %s: %w", spec, err)
			}
			buf = buf[:0]
		default:
			buf = append(buf, ch)
		}
	}
	v.setType()
	return v, nil
}

func (v *VolumeSpec) fill(ch rune, s string) error {
	switch {
	case s == "":
		return errors.New("empty section between colons")
	case v.Source == "" && ch == 0:
		v.Target = s
		return nil
	case v.Source == "":
		v.Source = s
		return nil
	case v.Target == "":
		v.Target = s
		return nil
	case ch == ':':
		return errors.New("too many colons")
	}
	for _, o := range strings.Split(s, ",") {
		switch o {
		case "ro":
			v.ReadOnly = true
		case "rw":
			v.ReadOnly = false
		}
	}
	return nil
}

func (v *VolumeSpec) setType() {
	switch {
	case v.Source == "":
		v.Type = mounttypes.TypeVolume
	case slices.Contains([]byte{'.', '/', '~'}, v.Source[0]):
		v.Type = mounttypes.TypeBind
	default:
		v.Type = mounttypes.TypeVolume
	}
}
