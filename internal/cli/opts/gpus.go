package opts

import (
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// GpuOpts collects --gpus requests (docker's CLI syntax: "all", a count,
// or count=, device=, driver=, capabilities=, options= fields).
type GpuOpts struct{ values []container.DeviceRequest }

func gpuCount(s string) (int, error) {
	if s == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) {
			err = ne.Err
		}
		return 0, fmt.Errorf(`invalid count (%s): value must be either "all" or an integer: %w`, s, err)
	}
	return n, nil
}

func (o *GpuOpts) Set(value string) error {
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	req := container.DeviceRequest{}
	seen := map[string]bool{}
	for _, field := range fields {
		key, val, hasValue := strings.Cut(field, "=")
		if seen[key] {
			return fmt.Errorf("gpu request key '%s' can be specified only once", key)
		}
		seen[key] = true
		if !hasValue {
			seen["count"] = true
			if req.Count, err = gpuCount(key); err != nil {
				return err
			}
			continue
		}
		switch key {
		case "driver":
			req.Driver = val
		case "count":
			if req.Count, err = gpuCount(val); err != nil {
				return err
			}
		case "device":
			req.DeviceIDs = strings.Split(val, ",")
		case "capabilities":
			req.Capabilities = [][]string{append(strings.Split(val, ","), "gpu")}
		case "options":
			kv, err := csv.NewReader(strings.NewReader(val)).Read()
			if err != nil {
				return fmt.Errorf("failed to read gpu options: %w", err)
			}
			req.Options = map[string]string{}
			for _, f := range kv {
				k, v, _ := strings.Cut(f, "=")
				req.Options[k] = v
			}
		default:
			return fmt.Errorf("unexpected key '%s' in '%s'", key, field)
		}
	}
	if !seen["count"] && req.DeviceIDs == nil {
		req.Count = 1
	}
	if req.Options == nil {
		req.Options = map[string]string{}
	}
	if req.Capabilities == nil {
		req.Capabilities = [][]string{{"gpu"}}
	}
	o.values = append(o.values, req)
	return nil
}

func (o *GpuOpts) Type() string { return "gpu-request" }

func (o *GpuOpts) String() string {
	out := make([]string, 0, len(o.values))
	for _, g := range o.values {
		out = append(out, fmt.Sprintf("%v", g))
	}
	return strings.Join(out, ", ")
}

// Value returns the requests in the order given.
func (o *GpuOpts) Value() []container.DeviceRequest { return o.values }
