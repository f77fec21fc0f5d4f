package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	yaml "github.com/goccy/go-yaml"
	yamlparser "github.com/goccy/go-yaml/parser"
	toml "github.com/pelletier/go-toml/v2"
)

// syntaxError explains why viper could not parse the config file at path
// (contents data): "<path>:<line>:<column>: <what>". viper's own errors
// give no position for TOML and no column for YAML. It returns fallback
// when the position cannot be found.
func syntaxError(path string, data []byte, fallback error) error {
	at := func(line, col int, msg string) error {
		return fmt.Errorf("%s:%d:%d: %s", path, line, col, msg)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".toml":
		var de *toml.DecodeError
		if err := toml.Unmarshal(data, new(map[string]any)); errors.As(err, &de) {
			line, col := de.Position()
			return at(line, col, "TOML: "+strings.TrimPrefix(de.Error(), "toml: "))
		}
	case ".yaml", ".yml":
		var ye yaml.Error
		if _, err := yamlparser.ParseBytes(data, 0); errors.As(err, &ye) && ye.GetToken() != nil {
			p := ye.GetToken().Position
			return at(p.Line, p.Column, "YAML: "+ye.GetMessage())
		}
	case ".json":
		var se *json.SyntaxError
		if err := json.Unmarshal(data, new(any)); errors.As(err, &se) {
			before := data[:min(int(se.Offset), len(data))]
			line := bytes.Count(before, []byte("\n")) + 1
			col := len(before) - bytes.LastIndexByte(before, '\n')
			return at(line, col, "JSON: "+se.Error())
		}
	}
	return fallback
}
