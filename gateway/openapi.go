package gateway

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// OpenAPIPath serves the OpenAPI document, without a key (like /healthz):
// it describes the API, not anyone's data.
const OpenAPIPath = "/v1/openapi.json"

// openAPIYAML is the API's OpenAPI 3.1 document, written by hand beside
// the handlers; tests check it against the routes and against real
// responses, so it cannot drift.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPIDocument is the gateway's OpenAPI document, loaded.
func OpenAPIDocument() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("gateway/openapi.yaml: %w", err)
	}
	return doc, nil
}

var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	doc, err := OpenAPIDocument()
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
})

func handleOpenAPI(c echo.Context) error {
	b, err := openAPIJSON()
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, b)
}
