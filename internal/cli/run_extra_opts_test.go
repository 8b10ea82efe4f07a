package cli

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

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
