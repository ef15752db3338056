"""What the operator, the gateway, `modelplex scale` and the dev cluster share to reach the Kubernetes
API: credentials (`credentials`), the one transport (`client`, `watch`), its error (`errors`) and the
table of resource paths (`resources`)."""
