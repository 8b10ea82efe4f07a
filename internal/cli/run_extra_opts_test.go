package cli

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"

	"github.com/skiff-dev/skiff/internal/cli/opts"
)

// TestGpuOpts: --gpus (opts.GpuOpts, registered with the device flags)
// parses docker's syntax.
func TestGpuOpts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want container.DeviceRequest
		err  string
	}{
		{"all", container.DeviceRequest{Count: -1, Capabilities: [][]string{{"gpu"}}, Options: map[string]string{}}, ""},
		{"2", container.DeviceRequest{Count: 2, Capabilities: [][]string{{"gpu"}}, Options: map[string]string{}}, ""},
		{`"device=0,1",driver=nvidia`, container.DeviceRequest{Driver: "nvidia", DeviceIDs: []string{"0", "1"}, Capabilities: [][]string{{"gpu"}}, Options: map[string]string{}}, ""},
		{"count=1,capabilities=compute", container.DeviceRequest{Count: 1, Capabilities: [][]string{{"compute", "gpu"}}, Options: map[string]string{}}, ""},
		{"some", container.DeviceRequest{}, `invalid count (some): value must be either "all" or an integer`},
		{"count=1,count=2", container.DeviceRequest{}, "gpu request key 'count' can be specified only once"},
		{"colour=red", container.DeviceRequest{}, "unexpected key 'colour' in 'colour=red'"},
	} {
		var g opts.GpuOpts
		err := g.Set(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || len(g.Value()) != 1 || !reflect.DeepEqual(g.Value()[0], tc.want) {
			t.Errorf("%s: %+v %v, want %+v", tc.in, g.Value(), err, tc.want)
		}
	}
}

func TestPreflightRunFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		code int
		warn string
	}{
		{[]string{"--cpu-count", "2"}, `"--cpu-count" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux`, 1, ""},
		{[]string{"--io-maxiops", "2"}, `"--io-maxiops" is only supported on a Docker daemon running on windows`, 1, ""},
		{[]string{"--disable-content-trust=false"}, "skiff does not verify image signatures", 125, ""},
		{[]string{"--disable-content-trust"}, "", 0, ""},
		{[]string{"--kernel-memory", "8m"}, "", 0, "kernel memory limit capabilities"},
	} {
		flags := pflag.NewFlagSet("run", pflag.ContinueOnError)
		addCreateFlags(flags, &createOptions{})
		addFlags(flags)
		if err := flags.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		err := preflightRunFlags(flags, &stderr)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.args, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.want) || exitCodeFor(err) != tc.code {
			t.Errorf("%v: %v (exit %d), want %q exit %d", tc.args, err, exitCodeFor(err), tc.want, tc.code)
		}
		if !strings.Contains(stderr.String(), tc.warn) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, stderr.String(), tc.warn)
		}
	}
}
