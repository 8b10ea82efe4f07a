package opts

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// NetworkAttachmentOpts is one --network value, short (a name) or long
// (name=...,alias=...,ip=...).
type NetworkAttachmentOpts struct {
	Target       string
	Aliases      []string
	DriverOpts   map[string]string
	Links        []string
	IPv4Address  netip.Addr
	IPv6Address  netip.Addr
	LinkLocalIPs []netip.Addr
	MacAddress   string
	GwPriority   int
}

// NetworkOpt is the repeatable --network/--net flag.
type NetworkOpt struct {
	options []NetworkAttachmentOpts
}

var longNetworkSyntax = regexp.MustCompile(`\w+=\w+(,\w+=\w+)*`)

// Set parses one --network value.
func (n *NetworkOpt) Set(value string) error {
	var o NetworkAttachmentOpts
	if !longNetworkSyntax.MatchString(value) {
		o.Target = value
		n.options = append(n.options, o)
		return nil
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	o.Aliases = []string{}
	for _, field := range fields {
		key, val, ok := strings.Cut(strings.ToLower(field), "=")
		if !ok || key == "" {
			return fmt.Errorf("invalid field %s", field)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "name":
			o.Target = val
		case "alias":
			o.Aliases = append(o.Aliases, val)
		case "ip":
			if o.IPv4Address, err = netip.ParseAddr(val); err != nil {
				return err
			}
		case "ip6":
			if o.IPv6Address, err = netip.ParseAddr(val); err != nil {
				return err
			}
		case "mac-address":
			o.MacAddress = val
		case "link-local-ip":
			a, err := netip.ParseAddr(val)
			if err != nil {
				return err
			}
			o.LinkLocalIPs = append(o.LinkLocalIPs, a)
		case "driver-opt":
			k, v, ok := strings.Cut(val, "=")
			if !ok || k == "" {
				return errors.New("invalid key value pair format in driver options")
			}
			if o.DriverOpts == nil {
				o.DriverOpts = map[string]string{}
			}
			o.DriverOpts[strings.TrimSpace(k)] = strings.TrimSpace(v)
		case "gw-priority":
			if o.GwPriority, err = strconv.Atoi(val); err != nil {
				var numErr *strconv.NumError
				if errors.As(err, &numErr) {
					err = numErr.Err
				}
				return fmt.Errorf("invalid gw-priority (%s): %w", val, err)
			}
		default:
			return errors.New("invalid field key " + key)
		}
	}
	if o.Target == "" {
		return errors.New("network name/id is not specified")
	}
	n.options = append(n.options, o)
	return nil
}

func (n *NetworkOpt) Type() string   { return "network" }
func (n *NetworkOpt) String() string { return "" }

// Value returns the attachments in order.
func (n *NetworkOpt) Value() []NetworkAttachmentOpts { return n.options }

// NetworkMode is the first network's name, or "default" like docker.
func (n *NetworkOpt) NetworkMode() string {
	if len(n.options) > 0 {
		return n.options[0].Target
	}
	return "default"
}
