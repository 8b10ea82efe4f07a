package cri

import (
	"time"

	"github.com/moby/moby/api/types/events"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

// criEventType maps the engine's container events to the CRI's; the rest
// (exec, kill, attach, ...) are not CRI events.
var criEventType = map[events.Action]runtimeapi.ContainerEventType{
	events.ActionCreate:  runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
	events.ActionStart:   runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
	events.ActionDie:     runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
	events.ActionDestroy: runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
}

// GetContainerEvents streams the life cycle of pod sandboxes and their
// containers (the kubelet's evented PLEG) from the engine's event feed,
// each with the pod's sandbox status and its containers' statuses as they
// are when the event is sent. Docker's own containers are not reported.
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	ctx := stream.Context()
	_, live, cancel := s.b.SubscribeEvents(time.Time{}, time.Time{}, filters.Args{"type": {string(events.ContainerEventType)}})
	defer cancel()
	for {
		var m events.Message
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case m, ok = <-live:
			if !ok {
				return nil
			}
		}
		typ, known := criEventType[m.Action]
		kind := m.Actor.Attributes[labelKind]
		if !known || kind == "" {
			continue
		}
		sandboxID := m.Actor.ID
		if kind == kindContainer {
			sandboxID = m.Actor.Attributes[labelSandbox]
		}
		resp := &runtimeapi.ContainerEventResponse{ContainerId: m.Actor.ID, ContainerEventType: typ, CreatedAt: m.TimeNano}
		if st, err := s.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sandboxID}); err == nil {
			resp.PodSandboxStatus = st.Status
			if cl, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: sandboxID}}); err == nil {
				for _, c := range cl.Containers {
					if cs, err := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id}); err == nil {
						resp.ContainersStatuses = append(resp.ContainersStatuses, cs.Status)
					}
				}
			}
		} else if !errdefs.IsNotFound(err) {
			s.log.Debug("container event: sandbox status", "sandbox", sandboxID, "err", err)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}
