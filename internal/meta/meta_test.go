package meta

import (
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestOpenTwiceIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root", "meta.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// bbolt's flock is per open file, so a second Open in this process
	// contends exactly like a second daemon would.
	_, err = Open(path)
	if err == nil {
		t.Fatal("second Open succeeded")
	}
	if errdefs.KindOf(err) != errdefs.KindUnavailable || !strings.Contains(err.Error(), "data root in use by another skiff daemon") {
		t.Fatalf("second Open: got %v (kind %v)", err, errdefs.KindOf(err))
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path)
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	db2.Close()
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	db.View(func(tx *bolt.Tx) error {
		got = string(tx.Bucket(bucketMeta).Get(keySchema))
		return nil
	})
	if got != "1" {
		t.Fatalf("schema = %q, want 1", got)
	}
	// A database written by a newer skiff is refused.
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("99")) })
	db.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("open newer schema: %v", err)
	}
}

func TestJSONHelpers(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type rec struct{ N int }
	bucket := []byte("test.v1")

	err = db.View(func(tx *bolt.Tx) error {
		var r rec
		ok, err := GetJSON(tx, bucket, "a", &r)
		if ok || err != nil {
			t.Errorf("GetJSON on missing bucket: %v %v", ok, err)
		}
		return ForEachJSON(tx, bucket, func(string, *rec) error { t.Error("ForEach on missing bucket called fn"); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for i, k := range []string{"b", "a", "c"} {
			if err := PutJSON(tx, bucket, k, rec{N: i}); err != nil {
				return err
			}
		}
		return Delete(tx, bucket, "c")
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var sum int
	db.View(func(tx *bolt.Tx) error {
		var r rec
		if ok, err := GetJSON(tx, bucket, "b", &r); !ok || err != nil || r.N != 0 {
			t.Errorf("GetJSON b = %v %v %v", r, ok, err)
		}
		return ForEachJSON(tx, bucket, func(k string, v *rec) error {
			keys = append(keys, k)
			sum += v.N
			return nil
		})
	})
	if strings.Join(keys, ",") != "a,b" || sum != 1 {
		t.Fatalf("ForEachJSON saw %v sum %d", keys, sum)
	}
	// Deleting what is not there is fine.
	if err := db.Update(func(tx *bolt.Tx) error { return Delete(tx, []byte("nope"), "x") }); err != nil {
		t.Fatal(err)
	}
}
