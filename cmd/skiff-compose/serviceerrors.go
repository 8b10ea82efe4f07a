package main

// compose's errors about an image say which image, not which service
// ("Error response from daemon: manifest for REF not found: manifest
// unknown", after a progress line "Image REF Error"). nameServices puts the
// services that use the image in front ("service \"app\": ..."), so the one
// line a user reads names the service to fix. It runs only after a command
// failed, loads the project again for the services' images (every profile),
// and leaves the error alone when it names no service's image or the
// project does not load.

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	dockercli "github.com/docker/cli/cli"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
)

func nameServices(cmd *cobra.Command, err error) error {
	var st dockercli.StatusError
	if errors.As(err, &st) {
		return err
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "{") || strings.Contains(msg, `service "`) {
		return err
	}
	name, _ := cmd.Root().PersistentFlags().GetString("project-name")
	o, oerr := projectOptions(cmd, cli.WithProfiles([]string{"*"}), cli.WithName(name))
	if oerr != nil {
		return err
	}
	// compose already printed the loader's warnings (an obsolete
	// `version:`, ...) once
	log := logrus.StandardLogger()
	out := log.Out
	log.SetOutput(io.Discard)
	project, perr := o.LoadProject(cmd.Context())
	log.SetOutput(out)
	if perr != nil {
		return err
	}
	lines := strings.Split(msg, "\n")
	changed := false
	for i, l := range lines {
		var names []string
		for _, s := range project.Services {
			if s.Image != "" && mentionsImage(l, s.Image) {
				names = append(names, fmt.Sprintf("%q", s.Name))
			}
		}
		switch len(names) {
		case 0:
			continue
		case 1:
			lines[i] = "service " + names[0] + ": " + l
		default:
			lines[i] = "services " + strings.Join(names, ", ") + ": " + l
		}
		changed = true
	}
	if !changed {
		return err
	}
	return &fileError{msg: strings.Join(lines, "\n"), err: err}
}

// mentionsImage: the reference as the service writes it, or with the
// ":latest" the engine adds, stands in the message as a word of its own.
func mentionsImage(msg, image string) bool {
	for _, ref := range []string{image, image + ":latest"} {
		for i := 0; ; {
			j := strings.Index(msg[i:], ref)
			if j < 0 {
				break
			}
			start, end := i+j, i+j+len(ref)
			before := start == 0 || strings.ContainsRune(" \"'(", rune(msg[start-1]))
			after := end == len(msg) || strings.ContainsRune(" \"':),", rune(msg[end]))
			if before && after && !(end < len(msg) && msg[end] == ':' && end+1 < len(msg) && msg[end+1] != ' ') {
				return true
			}
			i = end
		}
	}
	return false
}
