package formatter

import (
	"fmt"
	"strconv"

	"github.com/docker/go-units"
)

// DefaultDiskUsageFormat is docker system df's table.
const DefaultDiskUsageFormat = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"

// NewDiskUsageFormat picks the format for `system df`.
func NewDiskUsageFormat(source string) Format {
	if source == "" || source == TableFormatKey {
		return DefaultDiskUsageFormat
	}
	return Format(source)
}

// DiskUsageRow is one line of `system df`.
type DiskUsageRow struct {
	Type                             string
	Total, Active, Size, Reclaimable int64
}

// DiskUsageWrite renders the summary rows of `system df`.
func DiskUsageWrite(ctx Context, rows []DiskUsageRow) error {
	return ctx.Write(newDiskUsageContext(DiskUsageRow{}), func(format func(SubContext) error) error {
		for _, r := range rows {
			if err := format(newDiskUsageContext(r)); err != nil {
				return err
			}
		}
		return nil
	})
}

type diskUsageContext struct {
	HeaderContext
	r DiskUsageRow
}

func newDiskUsageContext(r DiskUsageRow) *diskUsageContext {
	c := &diskUsageContext{r: r}
	c.Header = SubHeaderContext{
		"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE",
	}
	return c
}

func (c *diskUsageContext) MarshalJSON() ([]byte, error) { return MarshalJSON(c) }

func (c *diskUsageContext) Type() string       { return c.r.Type }
func (c *diskUsageContext) TotalCount() string { return strconv.FormatInt(c.r.Total, 10) }
func (c *diskUsageContext) Active() string     { return strconv.FormatInt(c.r.Active, 10) }
func (c *diskUsageContext) Size() string       { return units.HumanSize(float64(c.r.Size)) }

// Reclaimable shows the percentage of the size, as docker does, when
// there is something to reclaim.
func (c *diskUsageContext) Reclaimable() string {
	s := units.HumanSize(float64(c.r.Reclaimable))
	if c.r.Size > 0 {
		s += fmt.Sprintf(" (%v%%)", c.r.Reclaimable*100/c.r.Size)
	}
	return s
}
