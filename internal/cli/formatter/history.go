package formatter

import (
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
)

// DefaultHistoryFormat is docker history's table.
const DefaultHistoryFormat = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"

// NewHistoryFormat picks the format for `history`.
func NewHistoryFormat(source string, quiet, human bool) Format {
	switch {
	case quiet:
		return DefaultQuietFormat
	case (source == "" || source == TableFormatKey) && !human:
		return "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
	case source == "" || source == TableFormatKey:
		return DefaultHistoryFormat
	}
	return Format(source)
}

// HistoryWrite renders history rows, newest first as the engine sends them.
func HistoryWrite(ctx Context, human bool, items []image.HistoryResponseItem) error {
	now := ctx.now()
	return ctx.Write(newHistoryContext(), func(format func(SubContext) error) error {
		for _, h := range items {
			c := newHistoryContext()
			c.h, c.trunc, c.human, c.now = h, ctx.Trunc, human, now
			if err := format(c); err != nil {
				return err
			}
		}
		return nil
	})
}

type historyContext struct {
	HeaderContext
	h     image.HistoryResponseItem
	trunc bool
	human bool
	now   time.Time
}

func newHistoryContext() *historyContext {
	c := &historyContext{}
	c.Header = SubHeaderContext{
		"ID":           "IMAGE",
		"CreatedSince": "CREATED",
		"CreatedAt":    "CREATED AT",
		"CreatedBy":    "CREATED BY",
		"Size":         "SIZE",
		"Comment":      "COMMENT",
	}
	return c
}

func (c *historyContext) MarshalJSON() ([]byte, error) { return MarshalJSON(c) }

func (c *historyContext) ID() string {
	if c.trunc && c.h.ID != "<missing>" {
		return TruncateID(c.h.ID)
	}
	return c.h.ID
}

func (c *historyContext) CreatedAt() string {
	return time.Unix(c.h.Created, 0).Format(time.RFC3339)
}

func (c *historyContext) CreatedSince() string {
	if !c.human {
		return c.CreatedAt()
	}
	return units.HumanDuration(c.now.UTC().Sub(time.Unix(c.h.Created, 0))) + " ago"
}

func (c *historyContext) CreatedBy() string {
	by := strings.ReplaceAll(c.h.CreatedBy, "\t", " ")
	if c.trunc {
		return Ellipsis(by, 45)
	}
	return by
}

func (c *historyContext) Size() string {
	if c.human {
		return units.HumanSizeWithPrecision(float64(c.h.Size), 3)
	}
	return strconv.FormatInt(c.h.Size, 10)
}

func (c *historyContext) Comment() string { return c.h.Comment }

func (c *historyContext) Tags() string { return strings.Join(c.h.Tags, ", ") }
