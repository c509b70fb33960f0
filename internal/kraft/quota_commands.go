package kraft

import (
	"encoding/gob"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/metadata"
)

// AlterClientQuotas sets and removes client quotas (KIP-546). It sits in
// its own file, with its own gob registration, so that the security
// commands added alongside it (ACLs, SCRAM credentials) each touch only
// their own file.
type AlterClientQuotas struct {
	Request controller.AlterClientQuotasRequest
}

func (c AlterClientQuotas) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.AlterClientQuotas(img, c.Request)
}

func init() {
	gob.Register(AlterClientQuotas{})
	gob.Register(controller.AlterClientQuotasResponse{})
}
