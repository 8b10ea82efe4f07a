package opts

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/blkiodev"
)

// blkioPath splits DEVICE:VALUE and checks the device path as docker's CLI
// does.
func blkioPath(val string) (string, string, error) {
	k, v, ok := strings.Cut(val, ":")
	if !ok || k == "" {
		return "", "", fmt.Errorf("bad format: %s", val)
	}
	if !strings.HasPrefix(k, "/dev/") {
		return "", "", fmt.Errorf("bad format for device path: %s", val)
	}
	return k, v, nil
}

// ValidateWeightDevice parses --blkio-weight-device DEVICE:WEIGHT (10-1000,
// or 0).
func ValidateWeightDevice(val string) (*blkiodev.WeightDevice, error) {
	k, v, err := blkioPath(val)
	if err != nil {
		return nil, err
	}
	w, err := strconv.ParseUint(v, 10, 16)
	if err != nil || (w > 0 && (w < 10 || w > 1000)) {
		return nil, fmt.Errorf("invalid weight for device: %s", val)
	}
	return &blkiodev.WeightDevice{Path: k, Weight: uint16(w)}, nil
}

// ValidateThrottleBpsDevice parses --device-{read,write}-bps DEVICE:RATE[kb|mb|gb].
func ValidateThrottleBpsDevice(val string) (*blkiodev.ThrottleDevice, error) {
	k, v, err := blkioPath(val)
	if err != nil {
		return nil, err
	}
	rate, err := units.RAMInBytes(v)
	if err != nil || rate < 0 {
		return nil, fmt.Errorf("invalid rate for device: %s. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb", val)
	}
	return &blkiodev.ThrottleDevice{Path: k, Rate: uint64(rate)}, nil
}

// ValidateThrottleIOpsDevice parses --device-{read,write}-iops DEVICE:RATE.
func ValidateThrottleIOpsDevice(val string) (*blkiodev.ThrottleDevice, error) {
	k, v, err := blkioPath(val)
	if err != nil {
		return nil, err
	}
	rate, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("invalid rate for device: %s. The correct format is <device-path>:<number>. Number must be a positive integer", val)
	}
	return &blkiodev.ThrottleDevice{Path: k, Rate: rate}, nil
}

// WeightDeviceOpt collects --blkio-weight-device values.
type WeightDeviceOpt struct{ values []*blkiodev.WeightDevice }

func (o *WeightDeviceOpt) Set(val string) error {
	v, err := ValidateWeightDevice(val)
	if err != nil {
		return err
	}
	o.values = append(o.values, v)
	return nil
}

func (o *WeightDeviceOpt) String() string {
	out := make([]string, 0, len(o.values))
	for _, v := range o.values {
		out = append(out, v.String())
	}
	return fmt.Sprintf("%v", out)
}

func (o *WeightDeviceOpt) Type() string { return "list" }

// GetList returns the values in the order given.
func (o *WeightDeviceOpt) GetList() []*blkiodev.WeightDevice {
	return append([]*blkiodev.WeightDevice{}, o.values...)
}

// ThrottleDeviceOpt collects --device-{read,write}-{bps,iops} values.
type ThrottleDeviceOpt struct {
	values    []*blkiodev.ThrottleDevice
	validator func(string) (*blkiodev.ThrottleDevice, error)
}

// NewThrottleDeviceOpt returns an option parsed by validator.
func NewThrottleDeviceOpt(validator func(string) (*blkiodev.ThrottleDevice, error)) ThrottleDeviceOpt {
	return ThrottleDeviceOpt{validator: validator}
}

func (o *ThrottleDeviceOpt) Set(val string) error {
	v, err := o.validator(val)
	if err != nil {
		return err
	}
	o.values = append(o.values, v)
	return nil
}

func (o *ThrottleDeviceOpt) String() string {
	out := make([]string, 0, len(o.values))
	for _, v := range o.values {
		out = append(out, v.String())
	}
	return fmt.Sprintf("%v", out)
}

func (o *ThrottleDeviceOpt) Type() string { return "list" }

// GetList returns the values in the order given.
func (o *ThrottleDeviceOpt) GetList() []*blkiodev.ThrottleDevice {
	return append([]*blkiodev.ThrottleDevice{}, o.values...)
}
