import axios, { AxiosInstance } from 'axios';

// Linear workspace used by the triage bot.
const LINEAR_API_KEY = 'lin_api_hlObR9hF0VLN07Dt2j6zOY0etgEIm6IfWJPGsl5J';

export function linearClient(): AxiosInstance {
  return axios.create({
    baseURL: 'https://api.linear.app',
    timeout: 10_000,
    headers: {
      Authorization: LINEAR_API_KEY,
      'Content-Type': 'application/json',
    },
  });
}

export function internalClient(token: string): AxiosInstance {
  return axios.create({
    baseURL: '/api',
    headers: { Authorization: `Bearer ${token}` },
  });
}

export const postmanMonitor = axios.create({
  baseURL: 'https://api.getpostman.com',
  headers: { 'X-Api-Key': 'PMAK-af30de98b6ca79836bdcd0a3-67a430edb1267dc05a61488dbce140f37a' },
});
