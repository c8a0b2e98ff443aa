// `npm run test:e2e`: the API module in Node against a real backend the test starts itself.
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/e2e/**/*.e2e.test.js'],
  testTimeout: 180000,
}
