package opts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moby/moby/api/types/container"
)

// lookupEnv is where bare KEY values (-e KEY, env-file lines without '=')
// take their value from.
var lookupEnv = os.LookupEnv

// ReadKVStrings reads key=value files (--label-file) then appends override.
func ReadKVStrings(files, override []string) ([]string, error) {
	return readKVStrings(files, override, nil)
}

// ReadKVEnvStrings is ReadKVStrings for environment files: a line with a bare
// KEY takes its value from the CLI's environment (and is dropped when unset).
func ReadKVEnvStrings(files, override []string) ([]string, error) {
	return readKVStrings(files, override, lookupEnv)
}

func readKVStrings(files, override []string, lookup func(string) (string, bool)) ([]string, error) {
	var variables []string
	for _, f := range files {
		parsed, err := ParseKVFile(f, lookup)
		if err != nil {
			return nil, err
		}
		variables = append(variables, parsed...)
	}
	// flags come after the files so that they override.
	return append(variables, override...), nil
}

// ParseKVFile reads a docker env/label file: one KEY=VALUE per line, '#'
// comments and blank lines skipped, values taken verbatim (no quoting).
func ParseKVFile(filename string, lookup func(string) (string, bool)) ([]string, error) {
	fh, err := os.Open(filename)
	if err != nil {
		return []string{}, err
	}
	defer fh.Close()
	out, err := parseKVReader(fh, lookup)
	if err != nil {
		return []string{}, fmt.Errorf("invalid env file (%s): %v", filename, err)
	}
	return out, nil
}

func parseKVReader(r io.Reader, lookup func(string) (string, bool)) ([]string, error) {
	lines := []string{}
	scanner := bufio.NewScanner(r)
	bom := []byte{0xEF, 0xBB, 0xBF}
	for n := 1; scanner.Scan(); n++ {
		b := scanner.Bytes()
		if !utf8.Valid(b) {
			return []string{}, fmt.Errorf("invalid utf8 bytes at line %d: %v", n, b)
		}
		if n == 1 {
			b = bytes.TrimPrefix(b, bom)
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, hasValue := strings.Cut(line, "=")
		if key == "" {
			return []string{}, fmt.Errorf("no variable name on line '%s'", line)
		}
		if strings.ContainsAny(key, whiteSpaces) {
			return []string{}, fmt.Errorf("variable '%s' contains whitespaces", key)
		}
		if hasValue {
			lines = append(lines, line)
			continue
		}
		if lookup != nil {
			if v, ok := lookup(line); ok {
				lines = append(lines, key+"="+v)
			}
		}
	}
	return lines, scanner.Err()
}

// ConvertKVStringsToMap turns ["k=v", "k2"] into {"k":"v","k2":""}.
func ConvertKVStringsToMap(values []string) map[string]string {
	result := make(map[string]string, len(values))
	for _, value := range values {
		k, v, _ := strings.Cut(value, "=")
		result[k] = v
	}
	return result
}

// ParseRestartPolicy parses "name[:max-retries]". Only the syntax is checked;
// the engine validates the name.
func ParseRestartPolicy(policy string) (container.RestartPolicy, error) {
	if policy == "" {
		return container.RestartPolicy{}, nil
	}
	name, count, ok := strings.Cut(policy, ":")
	if ok && name == "" {
		return container.RestartPolicy{}, errors.New("invalid restart policy format: no policy provided before colon")
	}
	var retries int
	if count != "" {
		c, err := strconv.Atoi(count)
		if err != nil {
			return container.RestartPolicy{}, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		retries = c
	}
	return container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: retries}, nil
}
