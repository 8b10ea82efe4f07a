package main

// A broken compose file must name the file, the line and the key. compose's
// loader (compose-go) says some of that, never all of it: a schema error
// names the file and the key path but not the line ("validating FILE:
// services.web.ports must be a array"), a decoding or interpolation error
// names only the key path, and a YAML syntax error names only the lines
// ("go-yaml load error in parser ... at L2.C3-L4.C4: ...", without the
// file when no -p is given: compose-go's prepare() unmarshals each file to
// find `name:` and returns that error bare). locateFileError runs only
// after a command failed: it reads the project's compose files again, finds
// the key path (or the YAML position) of compose's message in them, and
// puts "FILE:LINE: KEY: " before compose's words. An error it cannot place
// is left exactly as compose made it.

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	dockercli "github.com/docker/cli/cli"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v4"
)

// wrapFileErrors gives every command of the tree (compose's commands load
// the project inside their RunE) the file error locator, and the naming of
// the service an image error is about.
func wrapFileErrors(root *cobra.Command) {
	for _, c := range root.Commands() {
		wrapFileErrors(c)
		if c.RunE == nil {
			continue
		}
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			if err == nil {
				return nil
			}
			if located := locateFileError(cmd, err); located != err {
				return located
			}
			return nameServices(cmd, err)
		}
	}
}

// composeFile is one of the project's compose files, as YAML text and tree.
type composeFile struct {
	path  string
	lines []string
	tree  *yaml.Node // nil when the file does not parse
}

var (
	// go-yaml v4: "... at L2.C3-L4.C4: did not find expected key", or one
	// position "at L3.C19: ...".
	yamlPosRe = regexp.MustCompile(`\bat L(\d+)\.C(\d+)(?:-L(\d+)\.C(\d+))?`)
	// mapstructure, one error a line: "'services[web].mem_limit' invalid size: 'lots'"
	quotedPathRe = regexp.MustCompile(`^'([^']+)' (.*)$`)
	// compose-go's interpolation: "error while interpolating services.web.ports.[].target: ..."
	interpRe = regexp.MustCompile(`^error while interpolating (\S+): (.*)$`)
	// schema and transform errors start with the key path.
	pathFirstRe = regexp.MustCompile(`^((?:services|networks|volumes|secrets|configs|include|models)[.\[]\S*?):? (.*)$`)
	// a YAML key line: indentation, an optional "- ", the key.
	keyLineRe = regexp.MustCompile(`^(\s*)(?:-\s+)?("[^"]*"|'[^']*'|[^\s#'"][^:#]*?)\s*:(?:\s|$)`)
)

const decodingPrefix = "decoding failed due to the following error(s):"

// locateFileError returns err with the compose file, line and key in front
// when err is a compose file error it can place, err itself otherwise. The
// exit code stays compose's: the result is a plain error (exit 1) exactly
// when err was.
func locateFileError(cmd *cobra.Command, err error) error {
	var st dockercli.StatusError
	if errors.As(err, &st) {
		return err
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "{") { // --progress json: compose's JSON error
		return err
	}
	files := projectFiles(cmd, msg)
	if len(files) == 0 {
		return err
	}
	var out string
	if strings.HasPrefix(msg, decodingPrefix) {
		// one error per line; each placed on its own
		var lines []string
		placed := false
		for _, l := range strings.Split(strings.TrimSpace(strings.TrimPrefix(msg, decodingPrefix)), "\n") {
			if l = strings.TrimSpace(l); l == "" {
				continue
			}
			if p, ok := placeMessage(files, l); ok {
				l, placed = p, true
			}
			lines = append(lines, l)
		}
		if !placed {
			return err
		}
		out = strings.Join(lines, "\n")
	} else {
		p, ok := placeMessage(files, msg)
		if !ok {
			return err
		}
		out = p
	}
	return &fileError{msg: out, err: err}
}

// fileError is compose's error with its place in the files.
type fileError struct {
	msg string
	err error
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return e.err }

// placeMessage turns one compose error message into "FILE:LINE: KEY: ..."
// (the key is not repeated when compose's words start with it).
func placeMessage(files []*composeFile, msg string) (string, bool) {
	// The file compose names, if any: look there first.
	named := ""
	for _, pfx := range []string{"failed to parse ", "validating "} {
		if !strings.HasPrefix(msg, pfx) {
			continue
		}
		for _, f := range files {
			if strings.HasPrefix(msg, pfx+f.path+": ") {
				named = f.path
				msg = strings.TrimPrefix(msg, pfx+f.path+": ")
			}
		}
	}
	// A YAML syntax error: a position, no key path.
	if m := yamlPosRe.FindStringSubmatch(msg); m != nil && strings.Contains(msg, "go-yaml") {
		// compose reads the files in order and stops at the first that
		// does not parse
		for _, f := range files {
			if named != "" && f.path != named {
				continue
			}
			if f.tree != nil && named == "" {
				continue // this file parses: not the one
			}
			line, _ := strconv.Atoi(m[1])
			if m[3] != "" {
				// "while parsing X at START-END": the parser noticed the
				// problem at END, unless END is past the last line (an
				// unterminated quote or bracket: START is where it opened).
				if end, _ := strconv.Atoi(m[3]); end <= len(f.lines) && strings.TrimSpace(f.lines[end-1]) != "" {
					line = end
				}
			}
			return locString(f.path, line, keyPathAtLine(f.lines, line), msg), true
		}
		return "", false
	}
	// A key path in compose's words.
	var path, rest string
	keyFirst := false
	if m := interpRe.FindStringSubmatch(msg); m != nil {
		path, rest = m[1], msg
		keyFirst = true // compose's words name it
	} else if m := quotedPathRe.FindStringSubmatch(msg); m != nil {
		path, rest = m[1], msg
		keyFirst = true
	} else if m := pathFirstRe.FindStringSubmatch(msg); m != nil {
		path, rest = m[1], msg
		keyFirst = true
		if m[2] == "false schema" {
			// the JSON schema's words for a key the specification lacks
			rest = m[1] + ": unknown key"
		}
	} else {
		return "", false
	}
	segs := splitKeyPath(path)
	for _, f := range orderFiles(files, named) {
		if f.tree == nil {
			continue
		}
		if n := findKey(f.tree, segs); n != nil {
			key := ""
			if !keyFirst {
				key = strings.Join(segs, ".")
			}
			return locString(f.path, n.Line, key, rest), true
		}
	}
	return "", false
}

func locString(path string, line int, key, msg string) string {
	s := path
	if line > 0 {
		s += ":" + strconv.Itoa(line)
	}
	s += ": "
	if key != "" {
		s += key + ": "
	}
	return s + msg
}

// orderFiles: the file compose named first, then the others last to first
// (a later file overrides an earlier one, so its value is the one in use).
func orderFiles(files []*composeFile, named string) []*composeFile {
	var out []*composeFile
	for _, f := range files {
		if f.path == named {
			out = append(out, f)
		}
	}
	for i := len(files) - 1; i >= 0; i-- {
		if files[i].path != named {
			out = append(out, files[i])
		}
	}
	return out
}

// splitKeyPath: "services[web].ports.[].target" -> services web ports [] target.
func splitKeyPath(p string) []string {
	var segs []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			switch {
			case i < 0:
				segs = append(segs, part)
				part = ""
			case i > 0:
				segs = append(segs, part[:i])
				part = part[i:]
			default:
				j := strings.IndexByte(part, ']')
				if j < 0 {
					segs = append(segs, part)
					part = ""
					continue
				}
				if in := part[1:j]; in == "" {
					segs = append(segs, "[]")
				} else {
					segs = append(segs, in)
				}
				part = part[j+1:]
			}
		}
	}
	return segs
}

// findKey is the node of the last segment of segs that the tree has (its
// key, for a mapping entry), the deepest one reached when the whole path is
// not there (a value compose derived, such as a port's target from "80");
// nil when not even the first segment is.
func findKey(n *yaml.Node, segs []string) *yaml.Node {
	for n != nil && (n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode) {
		if n.Kind == yaml.DocumentNode {
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		} else {
			n = n.Alias
		}
	}
	if n == nil || len(segs) == 0 {
		return nil
	}
	var keyNode, val *yaml.Node
	var candidates []*yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == segs[0] {
				keyNode, val = k, v
			} else if k.Value == "<<" && keyNode == nil { // merged from an anchor
				if r := findKey(v, segs); r != nil {
					return r
				}
			}
		}
	case yaml.SequenceNode:
		if segs[0] == "[]" {
			candidates = n.Content
		} else if i, err := strconv.Atoi(segs[0]); err == nil && i >= 0 && i < len(n.Content) {
			candidates = n.Content[i : i+1]
		} else {
			// "environment.A" where environment is a list "A=..."
			for _, it := range n.Content {
				if it.Kind == yaml.ScalarNode && (it.Value == segs[0] || strings.HasPrefix(it.Value, segs[0]+"=")) {
					return it
				}
			}
		}
	}
	if keyNode != nil {
		if len(segs) == 1 {
			return keyNode
		}
		if r := findKey(val, segs[1:]); r != nil {
			return r
		}
		return keyNode
	}
	for _, it := range candidates {
		if len(segs) == 1 {
			return it
		}
		if r := findKey(it, segs[1:]); r != nil {
			return r
		}
	}
	if len(candidates) > 0 {
		return candidates[0]
	}
	return nil
}

// keyPathAtLine is the key path of the line (1-based) of a file that does
// not parse, by indentation: the key on that line or the nearest one above,
// then each less indented key above it ("services.web.command").
func keyPathAtLine(lines []string, line int) string {
	var path []string
	indent := -1
	for i := min(line, len(lines)) - 1; i >= 0; i-- {
		m := keyLineRe.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		ind := len(m[1])
		if indent >= 0 && ind >= indent {
			continue
		}
		path = append([]string{strings.Trim(m[2], `"'`)}, path...)
		indent = ind
		if ind == 0 {
			break
		}
	}
	return strings.Join(path, ".")
}

// projectOptions are the options compose loads the project with, from the
// root command's flags and the environment (compose's toProjectOptions;
// its ProjectOptions are not exported).
func projectOptions(cmd *cobra.Command, more ...cli.ProjectOptionsFn) (*cli.ProjectOptions, error) {
	flags := cmd.Root().PersistentFlags()
	paths, _ := flags.GetStringArray("file")
	dir, _ := flags.GetString("project-directory")
	envFiles, _ := flags.GetStringArray("env-file")
	return cli.NewProjectOptions(paths, append([]cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(dir),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
	}, more...)...)
}

// projectFiles reads the compose files the command loaded, found as compose
// finds them (-f, COMPOSE_FILE, the default names upwards from the project
// directory, their override files), and any other YAML file compose's
// message names (an extends or include file).
func projectFiles(cmd *cobra.Command, msg string) []*composeFile {
	o, err := projectOptions(cmd)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var files []*composeFile
	add := func(p string) {
		if p == "-" || strings.Contains(p, "://") || strings.HasPrefix(p, "oci:") {
			return // stdin (already read) or remote
		}
		abs, err := filepath.Abs(p)
		if err != nil || seen[abs] {
			return
		}
		seen[abs] = true
		b, err := os.ReadFile(abs)
		if err != nil {
			return
		}
		f := &composeFile{path: abs, lines: strings.Split(string(b), "\n")}
		var doc yaml.Node
		if yaml.Unmarshal(b, &doc) == nil {
			f.tree = &doc
		}
		files = append(files, f)
	}
	for _, p := range o.ConfigPaths {
		add(p)
	}
	for _, p := range regexp.MustCompile(`/\S+\.ya?ml\b`).FindAllString(msg, -1) {
		add(p)
	}
	return files
}
