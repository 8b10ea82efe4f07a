package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/formatter"
	"github.com/skiff-dev/skiff/internal/cli/opts"
)

const defaultVersionTemplate = `{{with .Client -}}
Client:
 Version:	{{.Version}}
 API version:	{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:	{{.GoVersion}}
 Git commit:	{{.GitCommit}}
 Built:	{{.BuildTime}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:	{{.Version}}
  API version:	{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:	{{index .Details "GoVersion"}}
  Git commit:	{{index .Details "GitCommit"}}
  Built:	{{index .Details "BuildTime"}}
  OS/Arch:	{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:	{{index .Details "Experimental"}}
  {{- else }}
  Version:	{{$component.Version}}
  {{- $detailsOrder := getDetailsOrder $component}}
  {{- range $key := $detailsOrder}}
  {{$key}}:	{{index $component.Details $key}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}`

type clientVersion struct {
	Version           string `json:"Version,omitempty"`
	APIVersion        string `json:"ApiVersion,omitempty"`
	DefaultAPIVersion string `json:"DefaultAPIVersion,omitempty"`
	GitCommit         string `json:"GitCommit,omitempty"`
	GoVersion         string `json:"GoVersion,omitempty"`
	Os                string `json:"Os,omitempty"`
	Arch              string `json:"Arch,omitempty"`
	BuildTime         string `json:"BuildTime,omitempty"`
	Context           string `json:"Context"`
}

type serverVersion struct {
	Platform      client.PlatformInfo       `json:",omitempty"`
	Version       string                    `json:"Version"`
	APIVersion    string                    `json:"ApiVersion"`
	MinAPIVersion string                    `json:"MinAPIVersion,omitempty"`
	Os            string                    `json:"Os"`
	Arch          string                    `json:"Arch"`
	Components    []system.ComponentVersion `json:"Components,omitempty"`
	GitCommit     string                    `json:"GitCommit,omitempty"`
	GoVersion     string                    `json:"GoVersion,omitempty"`
	KernelVersion string                    `json:"KernelVersion,omitempty"`
	Experimental  bool                      `json:"Experimental,omitempty"`
	BuildTime     string                    `json:"BuildTime,omitempty"`
}

type versionInfo struct {
	Client clientVersion
	Server *serverVersion
}

func newClientVersion() clientVersion {
	return clientVersion{
		Version:           Version,
		APIVersion:        client.MaxAPIVersion,
		DefaultAPIVersion: client.MaxAPIVersion,
		GoVersion:         runtime.Version(),
		GitCommit:         GitCommit,
		BuildTime:         reformatDate(BuildTime),
		Os:                runtime.GOOS,
		Arch:              runtime.GOARCH,
		Context:           "default",
	}
}

func newServerVersion(sv client.ServerVersionResult) *serverVersion {
	out := &serverVersion{
		Platform:      sv.Platform,
		Version:       sv.Version,
		APIVersion:    sv.APIVersion,
		MinAPIVersion: sv.MinAPIVersion,
		Os:            sv.Os,
		Arch:          sv.Arch,
		Experimental:  sv.Experimental,
	}
	found := false
	for _, comp := range sv.Components {
		if comp.Name == "Engine" {
			found = true
			if bt, ok := comp.Details["BuildTime"]; ok {
				comp.Details["BuildTime"] = reformatDate(bt)
				out.BuildTime = bt
			}
			out.GitCommit = comp.Details["GitCommit"]
			out.GoVersion = comp.Details["GoVersion"]
			out.KernelVersion = comp.Details["KernelVersion"]
		}
		out.Components = append(out.Components, comp)
	}
	if !found {
		out.Components = append(out.Components, system.ComponentVersion{
			Name:    "Engine",
			Version: sv.Version,
			Details: map[string]string{"ApiVersion": sv.APIVersion, "MinAPIVersion": sv.MinAPIVersion, "Os": sv.Os, "Arch": sv.Arch},
		})
	}
	return out
}

func reformatDate(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.Format(time.ANSIC)
	}
	return s
}

func (c *CLI) newVersionCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the skiff version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runVersion(cmd.Context(), format)
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func (c *CLI) runVersion(ctx context.Context, format string) error {
	switch format {
	case "":
		format = defaultVersionTemplate
	case formatter.JSONFormatKey:
		format = formatter.JSONFormat
	}
	tmpl, err := formatter.NewTemplate("version").Funcs(template.FuncMap{"getDetailsOrder": detailsOrder}).Parse(format)
	if err != nil {
		return StatusError{StatusCode: 64, Status: "template parsing error: " + err.Error()}
	}
	vd := versionInfo{Client: newClientVersion()}
	api, err := c.Client(ctx)
	if err == nil {
		var sv client.ServerVersionResult
		if sv, err = api.ServerVersion(ctx, client.ServerVersionOptions{}); err == nil {
			vd.Server = newServerVersion(sv)
			vd.Client.APIVersion = api.ClientVersion()
		}
	}
	tw := tabwriter.NewWriter(c.out, 20, 1, 1, ' ', 0)
	err2 := tmpl.Execute(tw, vd)
	tw.Write([]byte{'\n'})
	tw.Flush()
	if err == nil {
		err = err2
	}
	return err
}

func detailsOrder(v system.ComponentVersion) []string {
	out := make([]string, 0, len(v.Details))
	for k := range v.Details {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// info is what `info --format` sees: the engine's Info at the top level,
// like docker's.
type info struct {
	*system.Info `json:",omitempty"`
	ServerErrors []string       `json:",omitempty"`
	ClientInfo   *clientInfoObj `json:",omitempty"`
	ClientErrors []string       `json:",omitempty"`
}

type clientInfoObj struct {
	Debug bool
	clientVersion
	Plugins  []any
	Warnings []string
}

func (c *CLI) newInfoCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runInfo(cmd.Context(), format)
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func (c *CLI) runInfo(ctx context.Context, format string) error {
	inf := info{ClientInfo: &clientInfoObj{Debug: c.debug, clientVersion: newClientVersion(), Plugins: []any{}}}
	api, err := c.Client(ctx)
	var connErr error
	if err == nil {
		var res client.SystemInfoResult
		res, err = api.Info(ctx, client.InfoOptions{})
		if err == nil {
			inf.Info = &res.Info
		}
	}
	if err != nil {
		if err != nil && (client.IsErrConnectionFailed(err) || api == nil) {
			connErr = err
		} else {
			inf.ServerErrors = append(inf.ServerErrors, err.Error())
		}
	}
	if format == "" {
		return errors.Join(c.prettyPrintInfo(inf), connErr)
	}
	if format == formatter.JSONFormatKey {
		format = formatter.JSONFormat
	}
	tmpl, err := formatter.ParseTemplate(format)
	if err != nil {
		return StatusError{StatusCode: 64, Status: "template parsing error: " + err.Error()}
	}
	if inf.Info == nil {
		inf.Info = &system.Info{}
	}
	err = tmpl.Execute(c.out, inf)
	fmt.Fprintln(c.out)
	return errors.Join(connErr, err)
}

func (c *CLI) prettyPrintInfo(inf info) error {
	out := c.out
	p := func(a ...any) { fmt.Fprintln(out, a...) }
	nonEmpty := func(label, v string) {
		if v != "" {
			fmt.Fprintln(out, label, v)
		}
	}
	p("Client:")
	nonEmpty(" Version:   ", inf.ClientInfo.Version)
	p(" Context:   ", inf.ClientInfo.Context)
	p(" Debug Mode:", inf.ClientInfo.Debug)
	p()
	p("Server:")
	if i := inf.Info; i != nil {
		p(" Containers:", i.Containers)
		p("  Running:", i.ContainersRunning)
		p("  Paused:", i.ContainersPaused)
		p("  Stopped:", i.ContainersStopped)
		p(" Images:", i.Images)
		nonEmpty(" Server Version:", i.ServerVersion)
		nonEmpty(" Storage Driver:", i.Driver)
		for _, pair := range i.DriverStatus {
			fmt.Fprintf(out, "  %s: %s\n", pair[0], pair[1])
		}
		nonEmpty(" Logging Driver:", i.LoggingDriver)
		nonEmpty(" Cgroup Driver:", i.CgroupDriver)
		nonEmpty(" Cgroup Version:", i.CgroupVersion)
		p(" Plugins:")
		p("  Volume:", strings.Join(i.Plugins.Volume, " "))
		p("  Network:", strings.Join(i.Plugins.Network, " "))
		p("  Log:", strings.Join(i.Plugins.Log, " "))
		p(" Swarm:", i.Swarm.LocalNodeState)
		if len(i.Runtimes) > 0 {
			names := make([]string, 0, len(i.Runtimes))
			for n := range i.Runtimes {
				names = append(names, n)
			}
			sort.Strings(names)
			p(" Runtimes:", strings.Join(names, " "))
			p(" Default Runtime:", i.DefaultRuntime)
		}
		if i.OSType == "linux" {
			p(" Init Binary:", i.InitBinary)
			if len(i.SecurityOptions) > 0 {
				p(" Security Options:")
				for _, so := range i.SecurityOptions {
					name, rest, _ := strings.Cut(so, ",")
					p("  " + strings.TrimPrefix(name, "name="))
					for _, kv := range strings.Split(rest, ",") {
						if v, ok := strings.CutPrefix(kv, "profile="); ok {
							p("   Profile:", v)
						}
					}
				}
			}
		}
		nonEmpty(" Kernel Version:", i.KernelVersion)
		nonEmpty(" Operating System:", i.OperatingSystem)
		nonEmpty(" OSType:", i.OSType)
		nonEmpty(" Architecture:", i.Architecture)
		p(" CPUs:", i.NCPU)
		p(" Total Memory:", units.BytesSize(float64(i.MemTotal)))
		nonEmpty(" Name:", i.Name)
		nonEmpty(" ID:", i.ID)
		p(" Docker Root Dir:", i.DockerRootDir)
		p(" Debug Mode:", i.Debug)
		if i.Debug || c.debug {
			p("  File Descriptors:", i.NFd)
			p("  Goroutines:", i.NGoroutines)
			p("  System Time:", i.SystemTime)
			p("  EventsListeners:", i.NEventsListener)
		}
		if len(i.Labels) > 0 {
			p(" Labels:")
			for _, l := range i.Labels {
				p("  " + l)
			}
		}
		p(" Experimental:", i.ExperimentalBuild)
		p(" Live Restore Enabled:", i.LiveRestoreEnabled)
		p()
		for _, w := range i.Warnings {
			fmt.Fprintln(c.err, w)
		}
	}
	for _, e := range inf.ServerErrors {
		fmt.Fprintln(c.err, "ERROR:", e)
	}
	if len(inf.ServerErrors) > 0 {
		return errors.New("errors pretty printing info")
	}
	return nil
}

type eventsOptions struct {
	since, until, format string
	filter               opts.FilterOpt
}

func (c *CLI) newEventsCommand() *cobra.Command {
	o := eventsOptions{filter: opts.NewFilterOpt()}
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runEvents(cmd.Context(), &o)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVar(&o.since, "since", "", "Show all events created since timestamp")
	f.StringVar(&o.until, "until", "", "Stream events until this timestamp")
	f.VarP(&o.filter, "filter", "f", "Filter output based on conditions provided")
	f.StringVar(&o.format, "format", "", "Format output using a custom template")
	return cmd
}

func (c *CLI) runEvents(ctx context.Context, o *eventsOptions) error {
	tmpl, err := eventsTemplate(o.format)
	if err != nil {
		return StatusError{StatusCode: 64, Status: "Error parsing format: " + err.Error()}
	}
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := api.Events(ctx, client.EventsListOptions{Since: o.since, Until: o.until, Filters: o.filter.Value()})
	for {
		select {
		case ev := <-res.Messages:
			if err := writeEvent(c.out, ev, tmpl); err != nil {
				return err
			}
		case err := <-res.Err:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func eventsTemplate(format string) (*template.Template, error) {
	switch format {
	case "":
		return nil, nil
	case formatter.JSONFormatKey:
		format = formatter.JSONFormat
	}
	tmpl, err := formatter.ParseTemplate(format)
	if err != nil {
		return nil, err
	}
	// catch {{.NoSuchField}} before any event arrives
	return tmpl, tmpl.Execute(io.Discard, &events.Message{})
}

// rfc3339NanoFixed pads nanoseconds so that event lines align.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

func writeEvent(out io.Writer, ev events.Message, tmpl *template.Template) error {
	if tmpl != nil {
		if err := tmpl.Execute(out, ev); err != nil {
			return err
		}
		_, err := out.Write([]byte{'\n'})
		return err
	}
	if ev.TimeNano != 0 {
		fmt.Fprintf(out, "%s ", time.Unix(0, ev.TimeNano).Format(rfc3339NanoFixed))
	} else if ev.Time != 0 {
		fmt.Fprintf(out, "%s ", time.Unix(ev.Time, 0).Format(rfc3339NanoFixed))
	}
	fmt.Fprintf(out, "%s %s %s", ev.Type, ev.Action, ev.Actor.ID)
	if len(ev.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(ev.Actor.Attributes))
		for k := range ev.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, 0, len(keys))
		for _, k := range keys {
			attrs = append(attrs, k+"="+ev.Actor.Attributes[k])
		}
		fmt.Fprintf(out, " (%s)", strings.Join(attrs, ", "))
	}
	_, err := fmt.Fprint(out, "\n")
	return err
}
