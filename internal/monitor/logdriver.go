package monitor

import (
	"fmt"

	"github.com/skiff-dev/skiff/internal/logger"
	"github.com/skiff-dev/skiff/internal/logger/crilog"
	"github.com/skiff-dev/skiff/internal/logger/journald"
	"github.com/skiff-dev/skiff/internal/logger/jsonfile"
	"github.com/skiff-dev/skiff/internal/logger/local"
	"github.com/skiff-dev/skiff/internal/logger/syslog"
)

// openLog opens the container's log driver as Config says: Log when the
// engine resolved one, else json-file at LogPath (nil for none). Drivers
// that cannot be read back are teed into their local cache; mode
// non-blocking puts a buffer in front of everything. An error here fails
// the start with Docker's "failed to initialize logging driver: ...".
func openLog(cfg *Config) (logger.Driver, error) {
	lc := cfg.Log
	if lc == nil {
		if cfg.LogPath == "" {
			return nil, nil
		}
		lc = &logger.Config{Driver: logger.JSONFile,
			File: &logger.FileConfig{Path: cfg.LogPath, MaxSize: cfg.LogMaxSize, MaxFiles: cfg.LogMaxFiles}}
	}
	d, err := openDriver(lc)
	if err != nil {
		return nil, fmt.Errorf("failed to initialize logging driver: %w", err)
	}
	if d == nil {
		return nil, nil
	}
	if lc.Cache != nil {
		c, err := local.Open(*lc.Cache, lc.Attrs)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("failed to initialize logging driver: error setting up local container log cache: %w", err)
		}
		d = logger.Tee{Main: d, Cache: c}
	}
	if lc.NonBlocking {
		d = logger.NewRing(d, lc.MaxBufferSize)
	}
	return d, nil
}

func openDriver(lc *logger.Config) (logger.Driver, error) {
	switch lc.Driver {
	case logger.None, "":
		return nil, nil
	case logger.JSONFile, logger.Local:
		if lc.File == nil {
			return nil, fmt.Errorf("%s: no log file", lc.Driver)
		}
		if lc.Driver == logger.Local {
			return local.Open(*lc.File, lc.Attrs)
		}
		return jsonfile.Open(lc.File.Path, jsonfile.Options{MaxSize: lc.File.MaxSize,
			MaxFiles: lc.File.MaxFiles, Compress: lc.File.Compress, Attrs: lc.Attrs})
	case logger.CRI:
		if lc.File == nil {
			return nil, fmt.Errorf("%s: no log file", lc.Driver)
		}
		return crilog.Open(lc.File.Path)
	case logger.Syslog:
		if lc.Syslog == nil {
			return nil, fmt.Errorf("syslog: no configuration")
		}
		return syslog.Open(*lc.Syslog)
	case logger.Journald:
		if lc.Journald == nil {
			return nil, fmt.Errorf("journald: no configuration")
		}
		return journald.Open(*lc.Journald)
	}
	return nil, fmt.Errorf("logger: no log driver named '%s' is registered", lc.Driver)
}
