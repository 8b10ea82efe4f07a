package opts

import (
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestBlkioDeviceOpts(t *testing.T) {
	for _, tc := range []struct {
		parse func(string) (any, error)
		in    string
		want  string // fmt of the value, or the error
	}{
		{func(s string) (any, error) { return ValidateWeightDevice(s) }, "/dev/sda:300", "/dev/sda:300"},
		{func(s string) (any, error) { return ValidateWeightDevice(s) }, "/dev/sda:5", "invalid weight for device: /dev/sda:5"},
		{func(s string) (any, error) { return ValidateWeightDevice(s) }, "sda:300", "bad format for device path: sda:300"},
		{func(s string) (any, error) { return ValidateWeightDevice(s) }, "/dev/sda", "bad format: /dev/sda"},
		{func(s string) (any, error) { return ValidateThrottleBpsDevice(s) }, "/dev/sda:1mb", "/dev/sda:1048576"},
		{func(s string) (any, error) { return ValidateThrottleBpsDevice(s) }, "/dev/sda:x", "invalid rate for device: /dev/sda:x. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb"},
		{func(s string) (any, error) { return ValidateThrottleIOpsDevice(s) }, "/dev/sda:100", "/dev/sda:100"},
		{func(s string) (any, error) { return ValidateThrottleIOpsDevice(s) }, "/dev/sda:1k", "invalid rate for device: /dev/sda:1k. The correct format is <device-path>:<number>. Number must be a positive integer"},
	} {
		v, err := tc.parse(tc.in)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = v.(interface{ String() string }).String()
		}
		if got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGpuOpts(t *testing.T) {
	var o GpuOpts
	for _, v := range []string{"all", `"device=1,2",capabilities=utility`} {
		if err := o.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	want := []container.DeviceRequest{
		{Count: -1, Capabilities: [][]string{{"gpu"}}, Options: map[string]string{}},
		{DeviceIDs: []string{"1", "2"}, Capabilities: [][]string{{"utility", "gpu"}}, Options: map[string]string{}},
	}
	if !reflect.DeepEqual(o.Value(), want) {
		t.Errorf("%+v", o.Value())
	}
	if err := o.Set("count=x"); err == nil || err.Error() != `invalid count (x): value must be either "all" or an integer: invalid syntax` {
		t.Errorf("count=x: %v", err)
	}
}
