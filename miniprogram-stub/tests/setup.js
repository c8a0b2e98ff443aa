// Every test file: miniprogram-simulate's wx, with the network answered by a fake API, storage
// in memory, and navigation recorded.
const simulate = require('miniprogram-simulate')
const {createFakeApi} = require('./fake-api.js')

const storage = new Map()
global.fakeApi = createFakeApi()
global.simulate = simulate

Object.assign(global.wx, {
  request: jest.fn((options) => global.fakeApi.handle(options)),
  getStorageSync: (key) => (storage.has(key) ? storage.get(key) : ''),
  setStorageSync: (key, value) => storage.set(key, value),
  removeStorageSync: (key) => storage.delete(key),
  login: jest.fn(({success}) => setTimeout(() => success({code: 'test-user.1', errMsg: 'login:ok'}), 0)),
  downloadFile: jest.fn(({url, success}) => setTimeout(() => success({statusCode: 200, tempFilePath: `wxfile://tmp/${url.split('/').pop()}`}), 0)),
  navigateTo: jest.fn(),
  redirectTo: jest.fn(),
  reLaunch: jest.fn(),
  navigateBack: jest.fn(),
  previewImage: jest.fn(),
  showToast: jest.fn(),
})

global.getApp = () => ({globalData: {}})

beforeEach(() => {
  storage.clear()
  global.fakeApi.reset()
  jest.clearAllMocks()
})

global.storage = storage
