package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/formatter"
	"github.com/skiff-dev/skiff/internal/cli/opts"
)

// Commands for living with running containers: attach, pause, unpause,
// update, top, stats, diff (port is in network_cmds.go).
func (c *CLI) livingCommands() []*cobra.Command {
	return []*cobra.Command{
		c.newAttachCommand(),
		c.newPauseCommand(),
		c.newUnpauseCommand(),
		c.newUpdateCommand(),
		c.newTopCommand(),
		c.newStatsCommand(),
		c.newDiffCommand(),
	}
}

func (c *CLI) newAttachCommand() *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runAttach(cmd.Context(), args[0], noStdin, sigProxy, detachKeys)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	f.BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	f.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func (c *CLI) runAttach(ctx context.Context, ref string, noStdin, sigProxy bool, detachKeys string) error {
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res, err := api.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	ctr := res.Container
	if ctr.State == nil || !ctr.State.Running {
		return errors.New("You cannot attach to a stopped container, start it first")
	}
	if ctr.State.Paused {
		return errors.New("You cannot attach to a paused container, unpause it first")
	}
	if ctr.State.Restarting {
		return errors.New("You cannot attach to a restarting container, wait until it is running")
	}
	stdin := !noStdin && ctr.Config.OpenStdin
	if err := c.in.CheckTty(stdin, ctr.Config.Tty); err != nil {
		return err
	}
	if sigProxy && !ctr.Config.Tty {
		proxy := newSignalProxy()
		defer proxy.stop()
		proxy.forward(context.WithoutCancel(ctx), api, ctr.ID)
	}
	statusC := c.waitExitOrRemoved(ctx, api, ctr.ID, false)
	closeFn, errCh, err := c.attachContainer(ctx, api, ctr.ID, ctr.Config, client.ContainerAttachOptions{
		Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: detachKeys,
	})
	if err != nil {
		return err
	}
	defer closeFn()
	if ctr.Config.Tty {
		c.monitorTtySize(ctx, func(ctx context.Context, h, w uint) error {
			_, err := api.ContainerResize(ctx, ctr.ID, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if err := <-errCh; err != nil {
		if errors.Is(err, errDetached) {
			return nil
		}
		return err
	}
	// The output ended: the container exited; exit with its code.
	if status := <-statusC; status != 0 {
		return StatusError{StatusCode: status}
	}
	return nil
}

// simpleEach builds pause/unpause-like commands: one call per container,
// its name printed on success.
func (c *CLI) simpleEach(use, short string, call func(ctx context.Context, api client.APIClient, id string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, id string) error {
				return call(ctx, api, id)
			})
		},
		DisableFlagsInUseLine: true,
	}
}

func (c *CLI) newPauseCommand() *cobra.Command {
	return c.simpleEach("pause CONTAINER [CONTAINER...]", "Pause all processes within one or more containers",
		func(ctx context.Context, api client.APIClient, id string) error {
			_, err := api.ContainerPause(ctx, id, client.ContainerPauseOptions{})
			return err
		})
}

func (c *CLI) newUnpauseCommand() *cobra.Command {
	return c.simpleEach("unpause CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers",
		func(ctx context.Context, api client.APIClient, id string) error {
			_, err := api.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
			return err
		})
}

func (c *CLI) newUpdateCommand() *cobra.Command {
	var (
		memory, memSwap, memRes opts.MemBytes
		cpus                    opts.NanoCPUs
		cpuShares, cpuPeriod    int64
		cpuQuota, pidsLimit     int64
		cpusetCpus, cpusetMems  string
		restart                 string
		blkioWeight             uint16
	)
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if fl.NFlag() == 0 {
				return errors.New("you must provide one or more flags when using this command")
			}
			r := &container.Resources{
				Memory: memory.Value(), MemoryReservation: memRes.Value(), NanoCPUs: cpus.Value(),
				CPUShares: cpuShares, CPUPeriod: cpuPeriod, CPUQuota: cpuQuota,
				CpusetCpus: cpusetCpus, CpusetMems: cpusetMems, BlkioWeight: blkioWeight,
			}
			if fl.Changed("memory-swap") {
				r.MemorySwap = memSwap.Value()
			}
			if fl.Changed("pids-limit") {
				r.PidsLimit = &pidsLimit
			}
			uo := client.ContainerUpdateOptions{Resources: r}
			if fl.Changed("restart") {
				p, err := opts.ParseRestartPolicy(restart)
				if err != nil {
					return err
				}
				uo.RestartPolicy = &p
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			// Warnings go to stdout after the names, as docker's CLI prints them.
			var mu sync.Mutex
			var warns []string
			err = c.eachContainer(cmd.Context(), args, func(ctx context.Context, id string) error {
				res, err := api.ContainerUpdate(ctx, id, uo)
				mu.Lock()
				warns = append(warns, res.Warnings...)
				mu.Unlock()
				return err
			})
			if len(warns) > 0 {
				fmt.Fprintln(c.out, strings.Join(warns, "\n"))
			}
			return err
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.VarP(&memory, "memory", "m", "Memory limit")
	f.Var(&memSwap, "memory-swap", `Swap limit equal to memory plus swap: -1 to enable unlimited swap`)
	f.Var(&memRes, "memory-reservation", "Memory soft limit")
	f.Var(&cpus, "cpus", "Number of CPUs")
	f.Int64VarP(&cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.Int64Var(&pidsLimit, "pids-limit", 0, `Tune container pids limit (set -1 for unlimited)`)
	f.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	f.Uint16Var(&blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	return cmd
}

func (c *CLI) newTopCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.out, 20, 1, 3, ' ', 0)
			fmt.Fprintln(w, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(w, strings.Join(p, "\t"))
			}
			return w.Flush()
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().SetInterspersed(false) // ps options pass through
	return cmd
}

func (c *CLI) newDiffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return err
			}
			for _, ch := range res.Changes {
				fmt.Fprintf(c.out, "%s %s\n", ch.Kind, ch.Path)
			}
			return nil
		},
		DisableFlagsInUseLine: true,
	}
}

// statsRow is one line of `stats`, with the template fields docker offers.
type statsRow struct {
	Container, Name, ID               string
	CPUPerc, MemUsage, MemPerc, NetIO string
	BlockIO, PIDs                     string
}

const defaultStatsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeaders = map[string]string{
	"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

// rowFromStats computes docker's numbers from a sample.
func rowFromStats(ref string, s *container.StatsResponse, noTrunc bool) statsRow {
	id := s.ID
	if !noTrunc && len(id) > 12 {
		id = id[:12]
	}
	r := statsRow{Container: ref, Name: strings.TrimPrefix(s.Name, "/"), ID: id}
	if s.Read.IsZero() { // not running
		r.CPUPerc, r.MemPerc = "0.00%", "0.00%"
		r.MemUsage, r.NetIO, r.BlockIO, r.PIDs = "0B / 0B", "0B / 0B", "0B / 0B", "0"
		return r
	}
	cpu := 0.0
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	if s.PreCPUStats.SystemUsage != 0 && sysDelta > 0 && cpuDelta > 0 {
		n := float64(s.CPUStats.OnlineCPUs)
		if n == 0 {
			n = 1
		}
		cpu = cpuDelta / sysDelta * n * 100
	}
	mem := float64(s.MemoryStats.Usage)
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && float64(v) < mem {
		mem -= float64(v)
	} else if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && float64(v) < mem {
		mem -= float64(v)
	}
	limit := float64(s.MemoryStats.Limit)
	memPerc := 0.0
	if limit > 0 {
		memPerc = mem / limit * 100
	}
	var rx, tx float64
	for _, n := range s.Networks {
		rx += float64(n.RxBytes)
		tx += float64(n.TxBytes)
	}
	var rd, wr float64
	for _, b := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			rd += float64(b.Value)
		case "write":
			wr += float64(b.Value)
		}
	}
	r.CPUPerc = fmt.Sprintf("%.2f%%", cpu)
	r.MemUsage = units.BytesSize(mem) + " / " + units.BytesSize(limit)
	r.MemPerc = fmt.Sprintf("%.2f%%", memPerc)
	r.NetIO = units.HumanSizeWithPrecision(rx, 3) + " / " + units.HumanSizeWithPrecision(tx, 3)
	r.BlockIO = units.HumanSizeWithPrecision(rd, 3) + " / " + units.HumanSizeWithPrecision(wr, 3)
	r.PIDs = fmt.Sprint(s.PidsStats.Current)
	return r
}

func (c *CLI) newStatsCommand() *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runStats(cmd.Context(), args, all, noStream, noTrunc, format)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	f.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	f.StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

func (c *CLI) runStats(ctx context.Context, refs []string, all, noStream, noTrunc bool, format string) error {
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		list, err := api.ContainerList(ctx, client.ContainerListOptions{All: all})
		if err != nil {
			return err
		}
		for _, s := range list.Items {
			refs = append(refs, s.ID[:12])
		}
	}
	if format == "" {
		format = defaultStatsFormat
	}
	table := strings.HasPrefix(format, "table")
	tmplText := strings.TrimSpace(strings.TrimPrefix(format, "table"))
	tmpl, err := formatter.ParseTemplate(tmplText + "\n")
	if err != nil {
		return fmt.Errorf("template parsing error: %v", err)
	}
	var header strings.Builder
	if table {
		htmpl, _ := formatter.ParseTemplate(tmplText + "\n")
		h := map[string]string{}
		for k, v := range statsHeaders {
			h[k] = v
		}
		if err := htmpl.Execute(&header, h); err != nil {
			return fmt.Errorf("template: %v", err)
		}
	}
	var mu sync.Mutex
	rows := make([]statsRow, len(refs))
	errs := make([]error, len(refs))
	render := func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		if table {
			io.WriteString(tw, header.String())
		}
		mu.Lock()
		defer mu.Unlock()
		for i, r := range rows {
			if errs[i] != nil || r.ID == "" {
				continue
			}
			tmpl.Execute(tw, r)
		}
		tw.Flush()
	}
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := api.ContainerStats(ctx, ref, client.ContainerStatsOptions{Stream: !noStream, IncludePreviousSample: true})
			if err != nil {
				mu.Lock()
				errs[i] = err
				mu.Unlock()
				return
			}
			defer res.Body.Close()
			dec := json.NewDecoder(res.Body)
			for {
				var s container.StatsResponse
				if err := dec.Decode(&s); err != nil {
					if noStream && rows[i].ID == "" {
						mu.Lock()
						errs[i] = err
						mu.Unlock()
					}
					return
				}
				mu.Lock()
				rows[i] = rowFromStats(ref, &s, noTrunc)
				mu.Unlock()
				if noStream {
					return
				}
			}
		}()
	}
	if noStream {
		wg.Wait()
		render(c.out)
		for i, err := range errs {
			if err != nil {
				return fmt.Errorf("%s: %w", refs[i], err)
			}
		}
		return nil
	}
	// Live view: redraw every second until interrupted.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var b strings.Builder
		render(&b)
		fmt.Fprint(c.out, "\033[2J\033[H"+b.String())
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		case <-tick.C:
		}
	}
}
