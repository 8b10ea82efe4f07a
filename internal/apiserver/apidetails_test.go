package apiserver

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

// dockerd with swarm mode off reports the whole Swarm object, state
// "inactive" (compose reads an empty state as an active swarm).
func TestInfoSwarmInactive(t *testing.T) {
	sock := serve(t, &fakeBackend{info: func(context.Context) (*system.Info, error) {
		return &system.Info{ID: "x"}, nil
	}})
	resp, body := rawDo(t, sock, "GET", "/v1.41/info", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	want := `{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null}`
	if got := string(raw["Swarm"]); got != want {
		t.Errorf("Swarm = %s\nwant    %s", got, want)
	}
	c := newClient(t, sock, "")
	res, err := c.Info(context.Background(), client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Info.Swarm.LocalNodeState != "inactive" {
		t.Errorf("client sees %q", res.Info.Swarm.LocalNodeState)
	}
}
