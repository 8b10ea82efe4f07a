package builder

import (
	"slices"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// FuzzDockerfile runs the front end (parser, stages, stage names) on
// arbitrary Dockerfiles, then what the dispatcher derives without a
// backend: ONBUILD triggers as a base image would hand them back, and the
// argv of RUN, CMD and ENTRYPOINT (heredocs included). Invariants: every
// refusal is a client error (Invalid, or NotImplemented for a heredoc form
// skiff does not run), never a panic or a 500; a stored trigger parses back
// to one instruction that ONBUILD may carry; a heredoc RUN runs exactly the
// heredoc's body through the shell.
//
//	go test ./internal/builder -run '^$' -fuzz '^FuzzDockerfile$' -fuzztime 1m
func FuzzDockerfile(f *testing.F) {
	for _, s := range []string{
		"FROM busybox\nRUN echo hi\nCMD [\"sh\"]\n",
		"ARG V=1\nFROM busybox AS base\nONBUILD RUN echo $V\nONBUILD COPY . /src\nFROM base\nENTRYPOINT echo\n",
		"FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\n",
		"FROM busybox\nRUN <<-EOT\n\tindented\n\tEOT\n",
		"FROM busybox\nRUN <<A <<B\na\nA\nb\nB\n",
		"FROM busybox\nCOPY <<EOF /etc/x\ncontent\nEOF\n",
		"# escape=`\nFROM busybox\nRUN echo `\n  continued\n",
		"FROM busybox\nONBUILD ONBUILD RUN x\n",
		"FROM a AS x\nFROM b AS x\n",
		"FROM busybox\nSHELL [\"/bin/bash\", \"-c\"]\nRUN <<EOF\nset -e\nEOF\n",
		"RUN before from\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		_, stages, _, err := parseDockerfile("Dockerfile", content)
		if err != nil {
			if k := errdefs.KindOf(err); k != errdefs.KindInvalid {
				t.Fatalf("%q: refused with kind %v: %v", content, k, err)
			}
			return
		}
		st := &stageState{}
		for _, s := range stages {
			for _, cmd := range s.Commands {
				switch c := cmd.(type) {
				case *instructions.OnbuildCommand:
					checkTrigger(t, c.Expression)
				case *instructions.RunCommand:
					checkCmdLine(t, st, c.ShellDependantCmdLine)
				case *instructions.CmdCommand:
					checkCmdLine(t, st, c.ShellDependantCmdLine)
				case *instructions.EntrypointCommand:
					checkCmdLine(t, st, c.ShellDependantCmdLine)
				case *instructions.ShellCommand:
					st.cfg.Shell = c.Shell
				}
			}
		}
	})
}

func checkTrigger(t *testing.T, expr string) {
	cmd, err := parseTrigger(expr)
	if err != nil {
		if k := errdefs.KindOf(err); k != errdefs.KindInvalid {
			t.Fatalf("trigger %q: refused with kind %v: %v", expr, k, err)
		}
		return
	}
	switch cmd.(type) {
	case *instructions.OnbuildCommand, *instructions.MaintainerCommand:
		t.Fatalf("trigger %q of an accepted ONBUILD parses to %T, which ONBUILD may not carry", expr, cmd)
	}
}

func checkCmdLine(t *testing.T, st *stageState, c instructions.ShellDependantCmdLine) {
	argv, err := resolveCmdLine(st, c)
	if err != nil {
		if k := errdefs.KindOf(err); k != errdefs.KindNotImplemented {
			t.Fatalf("%+v: refused with kind %v: %v", c, k, err)
		}
		return
	}
	if len(c.Files) == 0 {
		return
	}
	want := c.Files[0].Data
	if c.Files[0].Chomp {
		want = parser.ChompHeredocContent(want)
	}
	if !slices.Equal(argv, append(st.shell(), want)) {
		t.Fatalf("heredoc %+v runs %q", c, argv)
	}
}
