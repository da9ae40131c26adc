package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Log formats.
const (
	FormatJSON = "json" // production: one JSON object a line
	FormatText = "text" // development: key=value
)

// NewLogger is a process's logger: JSON or text lines on w, from level
// (debug, info, warn, error; "" is info) up.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case FormatJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case FormatText, "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}
