// The consents a product needs, as both the product page (a quote needs them) and the apply
// page show them: which are given already, which the customer ticked, and granting the rest.
const api = require('./api.js')
const {CONSENT_TEXT} = require('./page.js')

async function consentsFor(product) {
  const given = await api.consents()
  const granted = new Set(given.items.filter((c) => !c.revoked_at).map((c) => c.purpose))
  return product.consents_needed.map((purpose) => ({
    purpose,
    label: CONSENT_TEXT[purpose] || purpose,
    granted: granted.has(purpose),
    checked: granted.has(purpose),
  }))
}

function ticked(consents, values) {
  const chosen = new Set(values)
  return consents.map((c) => ({...c, checked: c.granted || chosen.has(c.purpose)}))
}

// Grants each ticked consent not yet given, one Idempotency-Key per consent action.
async function grantTicked(page, consents) {
  for (const consent of consents.filter((c) => !c.granted)) {
    const action = `consent:${consent.purpose}`
    await api.grantConsent(consent.purpose, {key: api.actionKey(page, action, consent.purpose)})
    api.actionDone(page, action)
    consent.granted = true
  }
  return consents
}

module.exports = {consentsFor, ticked, grantTicked}
